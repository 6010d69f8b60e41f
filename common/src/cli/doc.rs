//! One way to finish every tool's `clap::Command`: its examples, environment, exit status and
//! related pages after the help (the man page generator reads them back as sections), and the
//! `completions SHELL` subcommand, which writes a completion script from the same definition.

use clap::{Arg, Command, FromArgMatches};
use std::io::Write;
use std::sync::OnceLock;

/// What a tool's help says after its options, besides what every tool shares.
#[derive(Debug, Clone, Copy, Default)]
pub struct Doc {
    /// Two or three examples: what it does (a comment line), then the command line(s).
    pub examples: &'static [(&'static str, &'static str)],
    /// Variables the tool reads that no flag declares with `env` (NAME, meaning).
    pub environment: &'static [(&'static str, &'static str)],
    /// Related man pages, like `vm-select(1)`.
    pub see_also: &'static [&'static str],
}

/// The headings of the sections after the options, in `--help`'s order (examples last, where a
/// reader's eye lands). The man page generator makes each a section (EXIT STATUS, ...).
pub const SECTIONS: [&str; 4] = ["Environment", "Exit status", "See also", "Examples"];

/// Variables every tool reads.
const COMMON_ENVIRONMENT: &[(&str, &str)] = &[
    (
        "RUST_LOG",
        "log filter for stderr (like debug or plan_run=trace); wins over -v and -q",
    ),
    ("NO_COLOR", "when set, no colour on stderr"),
];

/// The name of the subcommand that writes completion scripts.
pub const COMPLETIONS: &str = "completions";

static TOOL: OnceLock<String> = OnceLock::new();

/// The running tool's name (set by [`parse`]), for messages: `liftkit` before.
pub fn tool_name() -> &'static str {
    TOOL.get().map(String::as_str).unwrap_or("liftkit")
}

/// Finishes a tool's command: the text after the help (examples after `-h`; environment, exit
/// status, related pages and examples after `--help`) and the `completions` subcommand.
pub fn command(cmd: Command, doc: &Doc) -> Command {
    let examples = examples_text(doc);
    let long = long_sections(&cmd, doc)
        .into_iter()
        .map(|(heading, body)| format!("{heading}:\n{body}"))
        .collect::<Vec<_>>()
        .join("\n");
    cmd.after_help(examples)
        .after_long_help(long)
        .subcommand(completions_command())
        .args_conflicts_with_subcommands(true)
        .subcommand_negates_reqs(true)
        .disable_help_subcommand(true)
}

fn completions_command() -> Command {
    Command::new(COMPLETIONS)
        .about("Write a completion script for SHELL to stdout (make install installs them)")
        .arg(
            Arg::new("shell")
                .value_name("SHELL")
                .required(true)
                .value_parser(clap::value_parser!(clap_complete::Shell)),
        )
}

fn examples_text(doc: &Doc) -> String {
    let mut text = String::from("Examples:\n");
    for (what, line) in doc.examples {
        text.push_str(&format!("  # {what}\n"));
        for line in line.lines() {
            text.push_str(&format!("  {line}\n"));
        }
    }
    text
}

/// The sections after the options, each (heading, indented body), in [`SECTIONS`]' order.
pub fn long_sections(cmd: &Command, doc: &Doc) -> Vec<(&'static str, String)> {
    let mut environment: Vec<(String, String)> = cmd
        .get_arguments()
        .filter_map(|arg| {
            let name = arg.get_env()?.to_string_lossy().into_owned();
            let flag = arg.get_long().map(|l| format!("--{l}")).unwrap_or_default();
            Some((name, format!("the default of {flag}")))
        })
        .collect();
    environment.extend(
        doc.environment
            .iter()
            .chain(COMMON_ENVIRONMENT)
            .map(|(name, what)| (name.to_string(), what.to_string())),
    );
    let environment: String = environment
        .iter()
        .map(|(name, what)| format!("  {name}  {what}\n"))
        .collect();
    let exit = crate::ExitCode::table();
    let exit = exit
        .strip_prefix("Exit status:\n")
        .unwrap_or(&exit)
        .to_string();
    let see_also = format!("  {}\n", doc.see_also.join(", "));
    let examples = examples_text(doc);
    let examples = examples
        .strip_prefix("Examples:\n")
        .unwrap_or(&examples)
        .to_string();
    vec![
        (SECTIONS[0], environment),
        (SECTIONS[1], exit),
        (SECTIONS[2], see_also),
        (SECTIONS[3], examples),
    ]
}

/// Parses the arguments of `cmd` (a tool's finished command) into `T`. A usage error is printed
/// by clap and exits 2 (the table's usage code); `completions SHELL` writes the script and exits.
pub fn parse<T: FromArgMatches>(cmd: Command) -> T {
    let _ = TOOL.set(cmd.get_name().to_string());
    let matches = cmd.clone().get_matches();
    if let Some((COMPLETIONS, sub)) = matches.subcommand() {
        let shell = *sub
            .get_one::<clap_complete::Shell>("shell")
            .expect("SHELL is required");
        let mut script = Vec::new();
        write_completions(cmd, shell, &mut script);
        let mut out = std::io::stdout().lock();
        // A closed stdout (`... | head`) is no failure; any other write error is exit 74.
        let code = match out.write_all(&script).and_then(|()| out.flush()) {
            Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
                eprintln!("{}: stdout: {e}", tool_name());
                crate::ExitCode::IoErr.code()
            }
            _ => 0,
        };
        std::process::exit(code);
    }
    T::from_arg_matches(&matches).unwrap_or_else(|e| e.exit())
}

/// The completion script of `cmd` for `shell`: the one generator every tool (and `make install`)
/// uses.
pub fn write_completions(mut cmd: Command, shell: clap_complete::Shell, out: &mut dyn Write) {
    let name = cmd.get_name().to_string();
    clap_complete::generate(shell, &mut cmd, name, out);
}

/// `tool: warning: message` on stderr: the one style for warnings (control characters escaped).
pub fn warning(message: impl std::fmt::Display) {
    let message = message.to_string();
    eprintln!(
        "{}: warning: {}",
        tool_name(),
        crate::untrusted::for_terminal(&message)
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, clap::Parser)]
    #[command(name = "demo-tool")]
    struct Args {
        #[arg(long, env = "DEMO_URL")]
        url: String,
        inputs: Vec<std::path::PathBuf>,
    }

    const DOC: Doc = Doc {
        examples: &[("Read a file", "demo-tool --url x a.jsonl")],
        environment: &[("DEMO_PASSWORD", "the password")],
        see_also: &["vm-select(1)"],
    };

    fn finished() -> Command {
        command(<Args as clap::CommandFactory>::command(), &DOC)
    }

    #[test]
    fn help_ends_with_the_examples_and_lists_the_environment() {
        let help = finished().render_long_help().to_string();
        assert!(
            help.trim_end().ends_with("demo-tool --url x a.jsonl"),
            "{help}"
        );
        for needle in [
            "DEMO_URL  the default of --url",
            "DEMO_PASSWORD",
            "RUST_LOG",
            "130",
        ] {
            assert!(help.contains(needle), "{needle}: {help}");
        }
    }

    #[test]
    fn completions_need_no_required_flag_and_inputs_still_parse() {
        let m = finished()
            .try_get_matches_from(["demo-tool", "completions", "bash"])
            .unwrap();
        assert_eq!(m.subcommand_name(), Some("completions"));
        let m = finished()
            .try_get_matches_from(["demo-tool", "--url", "u", "a.jsonl"])
            .unwrap();
        let args = Args::from_arg_matches(&m).unwrap();
        assert_eq!(args.inputs.len(), 1);
        let mut script = Vec::new();
        write_completions(finished(), clap_complete::Shell::Fish, &mut script);
        assert!(String::from_utf8(script).unwrap().contains("demo-tool"));
    }
}
