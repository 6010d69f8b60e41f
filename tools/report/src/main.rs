fn main() -> std::process::ExitCode {
    let args: report::Args = common::cli::parse();
    common::error::finish("report", report::run(args))
}
