//! vm-select (being written).

use clap::Parser;
use common::{ExitCode, Result};

#[derive(Debug, Parser)]
#[command(name = "vm-select", version, after_long_help = common::cli::after_help())]
pub struct Args {
    #[command(flatten)]
    pub verbosity: common::cli::Verbosity,
}

pub fn command() -> clap::Command {
    <Args as clap::CommandFactory>::command()
}

pub fn run(_args: Args) -> Result<ExitCode> {
    Ok(ExitCode::Ok)
}
