fn main() -> std::process::ExitCode {
    let args: owner_group::Args = common::cli::parse();
    common::error::finish("owner-group", owner_group::run(args))
}
