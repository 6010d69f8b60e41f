fn main() -> std::process::ExitCode {
    let args: vm_verify::Args = common::cli::parse(vm_verify::command());
    common::error::finish("vm-verify", vm_verify::run(args))
}
