//! Man pages in man/ are generated from the tools' clap definitions; this test keeps them in sync.
//! `make man` (LIFTKIT_BLESS=1) rewrites them.

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

fn render(cmd: clap::Command) -> (String, Vec<u8>) {
    let name = cmd.get_name().to_string();
    let man = clap_mangen::Man::new(cmd)
        .manual("liftkit")
        .source(format!("liftkit {}", env!("CARGO_PKG_VERSION")));
    let mut bytes = Vec::new();
    man.render(&mut bytes).unwrap();
    (format!("{name}.1"), bytes)
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
            .split_once("\nExit status:\n")
            .map(|(_, rest)| rest.split("\n.SH").next().unwrap_or(rest))
            .unwrap_or_else(|| panic!("{file} lacks the exit-code table"));
        // roff writes a hyphen as `\-`.
        let table = table.replace("\\-", "-");
        assert_eq!(format!("{table}\n"), expected, "{file}");
    }
}
