//! Command-line pieces every tool shares: verbosity flags, logging to stderr, the exit-code table
//! in `--help` and man pages.

use clap::Args;
use std::io::IsTerminal;
use tracing_subscriber::EnvFilter;

/// `-v`/`-q`, shared by every tool. RUST_LOG, when set, wins.
#[derive(Debug, Clone, Args, Default)]
pub struct Verbosity {
    /// More detail on stderr (-v: info, -vv: debug, -vvv: trace)
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// Only errors on stderr
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
}

impl Verbosity {
    /// Starts logging to stderr (never stdout, which carries data).
    pub fn init_logging(&self) {
        let level = if self.quiet {
            "error"
        } else {
            match self.verbose {
                0 => "warn",
                1 => "info",
                2 => "debug",
                _ => "trace",
            }
        };
        // Our own crates at the chosen level; dependencies stay at warn unless RUST_LOG says more,
        // so that -vv never dumps HTTP headers (which carry credentials) from hyper or reqwest.
        // rustls-platform-verifier logs its own ERROR line for a certificate it rejects, which
        // would double the tool's one-line error: it is silenced.
        let default = format!(
            "warn,common={level},ovirt_dump={level},{},rustls_platform_verifier=off",
            crate_filters(level)
        );
        let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .with_ansi(color_on_stderr())
            .with_target(false)
            .without_time()
            .try_init();
    }

    pub fn show_progress(&self) -> bool {
        !self.quiet && std::io::stderr().is_terminal()
    }
}

fn crate_filters(level: &str) -> String {
    [
        "vm_select",
        "owner_group",
        "capacity_calc",
        "ip_budget",
        "rbac_gen",
        "plan_gen",
        "plan_run",
        "ovirt_sim",
        "forklift_sim",
    ]
    .iter()
    .map(|c| format!("{c}={level}"))
    .collect::<Vec<_>>()
    .join(",")
}

/// Colour only on a terminal and never when NO_COLOR is set.
pub fn color_on_stderr() -> bool {
    std::env::var_os("NO_COLOR").is_none() && std::io::stderr().is_terminal()
}

/// The text every tool puts after its help: the exit codes.
pub fn after_help() -> String {
    crate::ExitCode::table()
}

/// Parses arguments; on a usage error clap prints it and exits with status 2 (the table's usage code).
pub fn parse<T: clap::Parser>() -> T {
    T::parse()
}
