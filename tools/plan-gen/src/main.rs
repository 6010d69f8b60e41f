fn main() -> std::process::ExitCode {
    let args: plan_gen::Args = common::cli::parse(plan_gen::command());
    common::error::finish("plan-gen", plan_gen::run(args))
}
