fn main() -> std::process::ExitCode {
    let args: ip_budget::Args = common::cli::parse(ip_budget::command());
    common::error::finish("ip-budget", ip_budget::run(args))
}
