fn main() -> std::process::ExitCode {
    let args: ovirt_sim::Args = common::cli::parse(common::cli::command(
        ovirt_sim::command(),
        &Default::default(),
    ));
    common::error::finish("ovirt-sim", ovirt_sim::run(args))
}
