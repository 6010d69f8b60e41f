fn main() -> std::process::ExitCode {
    let args: report::Args = common::cli::parse(report::command());
    common::error::finish("report", report::run(args))
}
