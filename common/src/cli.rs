//! Command-line pieces every tool shares: the argument blocks (input/output, engine, Kubernetes,
//! verbosity), logging to stderr in one style (`tool: warning: ...`), the help's closing sections
//! (examples, environment, exit status) and the `completions` subcommand.
//!
//! A new tool follows the convention by: flattening [`Io`] (inputs, `-o FILE`), [`Engine`] or
//! [`Kube`] when it talks to one, and [`Verbosity`] into its `Args`; naming its format flag
//! `--format` (`crate::format::Format`, or its own `ValueEnum` with `jsonl` first); writing
//! `pub const DOC: Doc` and `pub fn command() -> clap::Command { cli::command(<Args as
//! clap::CommandFactory>::command(), &DOC) }`; calling `cli::parse(tool::command())` in main; and
//! adding a `[[bin]]` in the root Cargo.toml and its command to tests/man_pages.rs.

mod doc;
mod engine;
mod io;
mod kube;

pub use doc::{COMPLETIONS, Doc, SECTIONS, command, parse, tool_name, warning, write_completions};
pub use engine::{API_PATH, Engine, api_path_hint};
pub use io::{FORMAT_NAMES, Io, OutputFile, output_file};
pub use kube::Kube;

use clap::Args;
use std::io::IsTerminal;
use tracing_subscriber::EnvFilter;

/// The time zone `--time-zone` names (an IANA name), else the system's; an unknown name is a
/// usage error naming the flag.
pub fn time_zone(name: Option<&str>) -> crate::Result<jiff::tz::TimeZone> {
    match name {
        None => Ok(jiff::tz::TimeZone::system()),
        Some(name) => jiff::tz::TimeZone::get(name)
            .map_err(|e| crate::Error::usage(format!("--time-zone {name:?}: {e}"))),
    }
}

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
    /// Starts logging to stderr (never stdout, which carries data), filtered by
    /// [`Verbosity::default_directives`] unless RUST_LOG is set.
    pub fn init_logging(&self) {
        let default = self.default_directives();
        let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .with_ansi(color_on_stderr())
            .event_format(ToolFormat)
            .try_init();
    }

    /// The log filter every tool starts with (an EnvFilter directive list).
    pub fn default_directives(&self) -> String {
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
        // Some dependencies' own lines only repeat, worse, what the tool reports on one line:
        // rustls-platform-verifier logs an ERROR for a certificate it rejects, which would double
        // the tool's error (silenced always); kube's client and watcher log every failed request
        // and reconnect, several lines each, while the tool retries and says so itself (silenced
        // unless -vv, where debugging wants them).
        let kube = if self.verbose >= 2 { level } else { "off" };
        format!(
            "warn,common={level},ovirt_dump={level},{},rustls_platform_verifier=off,\
             kube_client={kube},kube_runtime={kube}",
            crate_filters(level)
        )
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
        "owner_notice",
        "vm_verify",
        "ovirt_sim",
        "forklift_sim",
    ]
    .iter()
    .map(|c| format!("{c}={level}"))
    .collect::<Vec<_>>()
    .join(",")
}

/// `--protect`, shared by the tools that name target namespaces (owner-group, rbac-gen): with the
/// system namespaces, those never to be targets (`common::names::protected_namespace`).
#[derive(Debug, Clone, Args, Default)]
pub struct Protect {
    /// A namespace never to target, besides default, kube-* and openshift* (repeatable; `team-*`
    /// for a prefix)
    #[arg(long = "protect", value_name = "NAMESPACE")]
    pub protect: Vec<String>,
}

impl Protect {
    /// Why `namespace` may not be a target, if it may not.
    pub fn refuses(&self, namespace: &str) -> Option<String> {
        crate::names::protected_namespace(namespace, &self.protect)
    }
}

/// Colour only on a terminal and never when NO_COLOR is set.
pub fn color_on_stderr() -> bool {
    std::env::var_os("NO_COLOR").is_none() && std::io::stderr().is_terminal()
}

/// The exit-code table as text (`Exit status:` and one line per code).
pub fn after_help() -> String {
    crate::ExitCode::table()
}

/// Log lines in the style of every message a tool writes: `tool: warning: text`, `tool: error:
/// text`, `tool: info: text` (`-v`), never a timestamp or module path.
struct ToolFormat;

impl<S, N> tracing_subscriber::fmt::FormatEvent<S, N> for ToolFormat
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    N: for<'a> tracing_subscriber::fmt::FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &tracing_subscriber::fmt::FmtContext<'_, S, N>,
        mut writer: tracing_subscriber::fmt::format::Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> std::fmt::Result {
        let level = match *event.metadata().level() {
            tracing::Level::ERROR => "error",
            tracing::Level::WARN => "warning",
            tracing::Level::INFO => "info",
            tracing::Level::DEBUG => "debug",
            tracing::Level::TRACE => "trace",
        };
        write!(writer, "{}: {level}: ", tool_name())?;
        ctx.field_format().format_fields(writer.by_ref(), event)?;
        writeln!(writer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn directives(verbose: u8, quiet: bool) -> String {
        Verbosity { verbose, quiet }.default_directives()
    }

    #[test]
    fn kube_logs_only_from_double_verbose_on() {
        for (verbose, quiet) in [(0, false), (1, false), (0, true)] {
            let d = directives(verbose, quiet);
            assert!(d.contains("kube_client=off,kube_runtime=off"), "{d}");
        }
        assert!(directives(2, false).contains("kube_client=debug,kube_runtime=debug"));
        assert!(directives(3, false).contains("kube_client=trace,kube_runtime=trace"));
        assert!(directives(1, false).contains("plan_run=info"));
        assert!(directives(2, false).contains("rustls_platform_verifier=off"));
        for v in 0..4 {
            EnvFilter::try_new(directives(v, false)).unwrap();
        }
    }
}
