fn main() -> std::process::ExitCode {
    let args: vm_select::Args = common::cli::parse();
    common::error::finish("vm-select", vm_select::run(args))
}
