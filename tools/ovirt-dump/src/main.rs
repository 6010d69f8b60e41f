fn main() -> std::process::ExitCode {
    let args: ovirt_dump::Args = common::cli::parse(ovirt_dump::command());
    common::error::finish("ovirt-dump", ovirt_dump::run(args))
}
