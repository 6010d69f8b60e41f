fn main() -> std::process::ExitCode {
    let args: rbac_gen::Args = common::cli::parse(rbac_gen::command());
    common::error::finish("rbac-gen", rbac_gen::run(args))
}
