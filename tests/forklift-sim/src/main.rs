fn main() -> std::process::ExitCode {
    let args: forklift_sim::Args = common::cli::parse(common::cli::command(
        forklift_sim::command(),
        &Default::default(),
    ));
    common::error::finish("forklift-sim", forklift_sim::run(args))
}
