/// The streaming tools allocate small records on several threads: mimalloc does that well.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    let args: owner_group::Args = common::cli::parse(owner_group::command());
    common::error::finish("owner-group", owner_group::run(args))
}
