//! ovirt-sim: an oVirt engine REST API v4 on loopback, serving a world loaded from a file.

use clap::Parser;
use common::{ExitCode, Result};

#[derive(Debug, Parser)]
#[command(name = "ovirt-sim", version, about = "An oVirt engine simulator", after_long_help = common::cli::after_help())]
pub struct Args {
    #[command(flatten)]
    pub verbosity: common::cli::Verbosity,
}

pub fn run(_args: Args) -> Result<ExitCode> {
    Ok(ExitCode::Ok)
}
