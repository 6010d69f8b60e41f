fn main() -> std::process::ExitCode {
    let args: vm_select::Args = common::cli::parse(vm_select::command());
    common::error::finish("vm-select", vm_select::run(args))
}
