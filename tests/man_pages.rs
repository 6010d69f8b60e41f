//! Man pages in man/ are generated from the tools' clap definitions; this test keeps them in sync.
//! `make man` (LIFTKIT_BLESS=1) rewrites them.

use clap_mangen::roff::{Roff, bold, roman};
use std::path::PathBuf;

fn commands() -> Vec<clap::Command> {
    vec![
        ovirt_dump::command(),
        vm_select::command(),
        owner_group::command(),
        capacity_calc::command(),
        ip_budget::command(),
        rbac_gen::command(),
        plan_gen::command(),
        plan_run::command(),
        report::command(),
        owner_notice::command(),
        vm_verify::command(),
    ]
}

/// A tool's man page: clap_mangen's title, NAME, SYNOPSIS, DESCRIPTION, OPTIONS and SUBCOMMANDS,
/// then the sections `common::cli::command` put after the help (EXIT STATUS, ENVIRONMENT,
/// EXAMPLES, SEE ALSO), each kept as written (no filling), then VERSION.
fn render(cmd: clap::Command) -> (String, Vec<u8>) {
    let name = cmd.get_name().to_string();
    let sections = after_help_sections(&cmd);
    let subcommands: Vec<(String, String)> = cmd
        .get_subcommands()
        .map(|sub| {
            let args: Vec<String> = sub
                .get_positionals()
                .filter_map(|a| a.get_value_names().map(|v| v.join(" ")))
                .collect();
            let about = sub.get_about().map(|a| a.to_string()).unwrap_or_default();
            (format!("{} {}", sub.get_name(), args.join(" ")), about)
        })
        .collect();
    let man = clap_mangen::Man::new(cmd)
        .manual("liftkit")
        .source(format!("liftkit {}", env!("CARGO_PKG_VERSION")));
    let mut bytes = Vec::new();
    man.render_title(&mut bytes).unwrap();
    man.render_name_section(&mut bytes).unwrap();
    man.render_synopsis_section(&mut bytes).unwrap();
    man.render_description_section(&mut bytes).unwrap();
    man.render_options_section(&mut bytes).unwrap();
    // clap_mangen would point at a page per subcommand (`tool-completions(1)`); there is one.
    let mut roff = Roff::default();
    roff.control("SH", ["SUBCOMMANDS"]);
    for (sub, about) in &subcommands {
        roff.control("TP", []);
        roff.text([bold(sub.as_str())]);
        roff.text([roman(about.as_str())]);
    }
    for heading in ["Exit status", "Environment", "Examples", "See also"] {
        let Some((_, body)) = sections.iter().find(|(h, _)| h == heading) else {
            panic!("{name}: no {heading:?} after its --help");
        };
        roff.control("SH", [heading.to_uppercase().as_str()]);
        roff.control("nf", []);
        for line in body.trim_end().lines() {
            roff.text([roman(line.strip_prefix("  ").unwrap_or(line))]);
        }
        roff.control("fi", []);
    }
    roff.to_writer(&mut bytes).unwrap();
    man.render_version_section(&mut bytes).unwrap();
    (format!("{name}.1"), bytes)
}

/// The sections after a tool's `--help`, by heading (`Exit status:` ...), as common writes them.
fn after_help_sections(cmd: &clap::Command) -> Vec<(String, String)> {
    let text = cmd
        .get_after_long_help()
        .map(|t| t.to_string())
        .unwrap_or_default();
    let mut sections: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        match line.strip_suffix(':') {
            Some(heading) if common::cli::SECTIONS.contains(&heading) => {
                sections.push((heading.to_string(), String::new()))
            }
            _ => {
                if let Some((_, body)) = sections.last_mut() {
                    body.push_str(line);
                    body.push('\n');
                }
            }
        }
    }
    sections
}

/// Every tool under tools/ has its page (a new tool is added to `commands` above).
#[test]
fn every_tool_has_a_man_page() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let names: Vec<String> = commands()
        .iter()
        .map(|c| c.get_name().to_string())
        .collect();
    for entry in std::fs::read_dir(root.join("tools")).unwrap() {
        let tool = entry.unwrap().file_name().to_string_lossy().into_owned();
        assert!(
            names.contains(&tool),
            "tools/{tool} has no man page: add it to commands()"
        );
    }
}

#[test]
fn man_pages_match_the_clap_definitions() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("man");
    let bless = std::env::var_os("LIFTKIT_BLESS").is_some();
    let mut stale = Vec::new();
    for cmd in commands() {
        let (file, bytes) = render(cmd);
        let path = dir.join(&file);
        if bless {
            std::fs::write(&path, &bytes).unwrap();
        } else if std::fs::read(&path).ok().as_deref() != Some(&bytes[..]) {
            stale.push(file);
        }
    }
    assert!(
        stale.is_empty(),
        "man pages out of date: {stale:?}; run `make man`"
    );
}

/// The documented exit codes (sysexits where one fits), each with its meaning: the contract every
/// man page states, written out here rather than read from common.
const EXIT_TABLE: &[(i32, &str)] = &[
    (0, "success"),
    (
        1,
        "done, with findings (something left out, exceeded or failed; see stderr)",
    ),
    (2, "bad usage (unknown flag, bad flag value)"),
    (
        65,
        "bad input data (malformed line, not the expected record)",
    ),
    (66, "an input file is missing or unreadable"),
    (
        69,
        "service unavailable (unreachable, timed out, 5xx, incomplete fetch)",
    ),
    (70, "internal error (a bug; please report it)"),
    (74, "I/O error writing output"),
    (76, "malformed response from the remote service"),
    (
        77,
        "authentication or permission denied (credentials, TLS verification)",
    ),
    (
        78,
        "bad configuration (missing password, unreadable CA file)",
    ),
    (129, "hung up (SIGHUP)"),
    (130, "interrupted (SIGINT, Ctrl-C)"),
    (143, "terminated (SIGTERM)"),
];

#[test]
fn every_man_page_prints_the_exit_code_table() {
    // The codes the tools exit with are the documented ones.
    let codes: Vec<(i32, &str)> = common::ExitCode::ALL
        .iter()
        .map(|c| (c.code(), c.meaning()))
        .collect();
    assert_eq!(codes, EXIT_TABLE);
    let expected: String = EXIT_TABLE
        .iter()
        .map(|(code, meaning)| format!("  {code:>3}  {meaning}\n"))
        .collect();
    for cmd in commands() {
        let (file, bytes) = render(cmd);
        let text = String::from_utf8(bytes).unwrap();
        let table = text
            .split_once("\n.SH \"EXIT STATUS\"\n.nf\n")
            .map(|(_, rest)| rest.split("\n.fi").next().unwrap_or(rest))
            .unwrap_or_else(|| panic!("{file} lacks the exit-code table"));
        // roff writes a hyphen as `\-`; the page drops the help's two-space indent.
        let table = table.replace("\\-", "-");
        let expected: String = expected.lines().map(|l| format!("{}\n", &l[2..])).collect();
        assert_eq!(format!("{table}\n"), expected, "{file}");
    }
}
