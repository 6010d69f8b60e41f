fn main() -> std::process::ExitCode {
    let args: owner_notice::Args = common::cli::parse(owner_notice::command());
    common::error::finish("owner-notice", owner_notice::run(args))
}
