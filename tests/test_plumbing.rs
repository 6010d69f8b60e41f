//! Guards on the tests themselves: no test reads a fixed absolute path (a clone elsewhere, as CI
//! uses, would not have it: references come from `../shared` next to the repository, found from
//! CARGO_MANIFEST_DIR), and the Kubernetes test bed never hands one port to two servers.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Top-level directories of a Unix filesystem (FHS), macOS's, and this project's machines': a
/// string literal starting with one of them is an absolute filesystem path.
const ROOT_DIRS: &[&str] = &[
    "bin", "boot", "dev", "etc", "home", "lib", "lib64", "media", "mnt", "nix", "opt", "proc",
    "root", "run", "sbin", "srv", "sys", "tmp", "usr", "var", "work", "Users", "private",
    "Volumes",
];

/// Absolute paths a test may name: the null device, and the process table.
const ALLOWED: &[&str] = &["/dev/null", "/proc/"];

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The string literals of Rust source `src` (plain, byte and raw), with their line numbers; text
/// in comments and char literals is skipped. Escapes are kept as written.
fn string_literals(src: &str) -> Vec<(usize, String)> {
    let b = src.as_bytes();
    let (mut i, mut line, mut out) = (0, 1, Vec::new());
    let count_lines = |s: &[u8]| s.iter().filter(|c| **c == b'\n').count();
    while i < b.len() {
        let rest = &src[i..];
        if rest.starts_with("//") {
            i += rest.find('\n').unwrap_or(rest.len());
        } else if rest.starts_with("/*") {
            let end = rest.find("*/").map_or(rest.len(), |e| e + 2);
            line += count_lines(&b[i..i + end]);
            i += end;
        } else if let Some(hashes) = raw_string_start(rest) {
            let open = rest.find('"').unwrap() + 1;
            let close = format!("\"{}", "#".repeat(hashes));
            let len = rest[open..].find(&close).unwrap_or(rest.len() - open);
            out.push((line, rest[open..open + len].to_string()));
            let end = (open + len + close.len()).min(rest.len());
            line += count_lines(&b[i..i + end]);
            i += end;
        } else if b[i] == b'"' || rest.starts_with("b\"") {
            let open = rest.find('"').unwrap() + 1;
            let mut j = open;
            while j < rest.len() && b[i + j] != b'"' {
                j += if b[i + j] == b'\\' { 2 } else { 1 };
            }
            let j = j.min(rest.len());
            out.push((line, rest[open..j].to_string()));
            line += count_lines(&b[i..i + j]);
            i += (j + 1).min(rest.len());
        } else if b[i] == b'\'' {
            // A char literal ('a', '\'', '"'), or a lifetime ('a) left as it is.
            i += match (rest.get(1..2), rest.get(2..3)) {
                (Some("\\"), _) => rest[3..].find('\'').map_or(1, |e| e + 4),
                (Some(_), Some("'")) => 3,
                _ => 1,
            };
        } else if b[i].is_ascii_alphanumeric() || b[i] == b'_' {
            // A whole identifier (or number): a literal's prefix (r, b, br) is only ever seen at
            // the start of one, by the branches above.
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                i += 1;
            }
        } else {
            line += usize::from(b[i] == b'\n');
            i += rest.chars().next().map_or(1, char::len_utf8);
        }
    }
    out
}

/// `r"`, `r#"`, `br##"`...: the number of hashes of a raw string starting `s`.
fn raw_string_start(s: &str) -> Option<usize> {
    let s = s.strip_prefix('b').unwrap_or(s).strip_prefix('r')?;
    let hashes = s.len() - s.trim_start_matches('#').len();
    s[hashes..].starts_with('"').then_some(hashes)
}

/// Why `literal` names a path a test must not read, if it does.
fn forbidden(literal: &str) -> Option<&'static str> {
    if let Some(path) = literal.strip_prefix('/') {
        let first = path.split(['/', '"', ' ']).next().unwrap_or("");
        let allowed = ALLOWED
            .iter()
            .any(|a| literal == *a || (a.ends_with('/') && literal.starts_with(a)));
        if ROOT_DIRS.contains(&first) && !allowed {
            return Some("an absolute path (tests find files from CARGO_MANIFEST_DIR)");
        }
    }
    let parent = literal.find("../")?;
    let shared = literal[parent..].starts_with("../shared");
    (!shared).then_some("a path leaving the repository other than ../shared")
}

/// The Rust files of the test crates under `dir`: not those of the test beds, packages of their
/// own (a Cargo.toml), whose sources are programs rather than tests.
fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            if !path.join("Cargo.toml").exists() {
                rust_files(&path, out);
            }
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn no_test_reads_a_path_outside_the_repository_and_shared() {
    let mut files = Vec::new();
    rust_files(&repo().join("tests"), &mut files);
    files.sort();
    assert!(files.len() > 10, "{files:?}");
    let me = Path::new(file!()).file_name().unwrap();
    let mut found = Vec::new();
    for file in files.iter().filter(|f| f.file_name() != Some(me)) {
        let src = std::fs::read_to_string(file).unwrap();
        for (line, literal) in string_literals(&src) {
            if let Some(why) = forbidden(&literal) {
                let rel = file.strip_prefix(repo()).unwrap().display();
                found.push(format!("{rel}:{line}: {literal:?}: {why}"));
            }
        }
    }
    assert!(found.is_empty(), "\n{}", found.join("\n"));
}

/// The guard's reader finds literals where Rust has them, and only there.
#[test]
fn the_guard_sees_every_kind_of_literal_and_no_comment() {
    let src = r####"
        // "/work/in-a-comment"
        /* "/etc/in-a-block-comment"
           over lines */
        let a = "/work/shared/ref"; let c = '"'; let l: &'static str = "/vms";
        let r = r#"/etc/passwd "quoted""#; let b = b"/tmp/x"; let e = "esc\"/home/not-a-start";
        let rel = "../../secrets"; let ok = "../shared/ref"; let dev = "/dev/null";
        for_each(r"/usr/share"); let url = "https://host/tmp/x";
    "####;
    let found: Vec<(usize, String)> = string_literals(src)
        .into_iter()
        .filter(|(_, l)| forbidden(l).is_some())
        .collect();
    let expected: Vec<(usize, String)> = [
        (5, "/work/shared/ref"),
        (6, "/etc/passwd \"quoted\""),
        (6, "/tmp/x"),
        (7, "../../secrets"),
        (8, "/usr/share"),
    ]
    .into_iter()
    .map(|(n, s)| (n, s.to_string()))
    .collect();
    assert_eq!(found, expected);
}

/// tests/kube-testbed/lib.sh's free_port: test beds starting at once (one per test binary and
/// per worktree) never get the same port, and never one from the kernel's ephemeral range, which
/// outgoing connections and port-0 binds take from. The 40 callers here draw the same random
/// ports (the same seed): without the reservation they would all get the first.
#[test]
fn free_port_never_gives_one_port_twice() {
    let beds = tempfile::tempdir().unwrap();
    let reserved = tempfile::tempdir().unwrap();
    let script = r#"
        set -euo pipefail
        PROG=test_plumbing
        source "$1/tests/kube-testbed/lib.sh"
        for i in $(seq 1 40); do
          ( RANDOM=7; DIR=$2/bed-$i; mkdir -p "$DIR"; free_port > "$2/port-$i" ) &
        done
        wait
        cat "$2"/port-*
    "#;
    let out = Command::new("bash")
        .args(["-c", script, "free_port"])
        .arg(repo())
        .arg(beds.path())
        .env("TMPDIR", reserved.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let ports: Vec<u32> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| l.parse().unwrap())
        .collect();
    assert_eq!(ports.len(), 40, "{stderr}");
    let unique: std::collections::BTreeSet<u32> = ports.iter().copied().collect();
    assert_eq!(unique.len(), ports.len(), "a port handed out twice");
    let range = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").unwrap();
    let low: u32 = range.split_whitespace().next().unwrap().parse().unwrap();
    assert!(ports.iter().all(|p| (1024..low).contains(p)), "{ports:?}");
}
