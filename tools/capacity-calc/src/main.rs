/// The streaming tools allocate small records on several threads: mimalloc does that well.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    let args: capacity_calc::Args = common::cli::parse(capacity_calc::command());
    common::error::finish("capacity-calc", capacity_calc::run(args))
}
