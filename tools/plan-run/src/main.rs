fn main() -> std::process::ExitCode {
    let args: plan_run::Args = common::cli::parse(plan_run::command());
    common::error::finish("plan-run", plan_run::run(args))
}
