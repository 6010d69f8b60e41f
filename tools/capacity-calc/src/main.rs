fn main() -> std::process::ExitCode {
    let args: capacity_calc::Args = common::cli::parse();
    common::error::finish("capacity-calc", capacity_calc::run(args))
}
