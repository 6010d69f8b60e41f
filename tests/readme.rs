//! The README's examples are tests: every ```sh block runs, in order, in one scratch directory, with
//! the tools on PATH and an engine simulator (demo world, TLS) described by OVIRT_URL, OVIRT_USER,
//! OVIRT_PASSWORD and OVIRT_CA. A block ending in `# exit N` must exit with N; others must succeed.
//! The ```text block right after a ```sh block is its stdout, exactly; a block without one must
//! print nothing on stdout. A line `# stderr: TEXT` requires TEXT as a whole line of its stderr.
//!
//! Scripts run under `set -euo pipefail`, so that a tool failing inside a pipeline fails the
//! example. An early-closing reader would make that racy: `grep ... | head -1` kills grep with
//! SIGPIPE (exit 141) whenever grep writes after head has gone, which pipefail reports although a
//! user's shell shows the same output. So `head` reads its input to the end after printing, and
//! the other early-closing readers (`grep -q`, `grep -m`) are refused after a pipe.

mod support;

use std::path::Path;
use std::process::{Command, Output};

struct Example {
    line: usize,
    script: String,
    /// The ```text block following the example: its whole stdout.
    stdout: Option<String>,
}

/// Defined before every example; see the module documentation.
const PRELUDE: &str = r#"set -euo pipefail
head() { local status=0; command head "$@" || status=$?; cat >/dev/null; return "$status"; }
"#;

fn examples(readme: &str) -> Vec<Example> {
    let lines: Vec<&str> = readme.lines().collect();
    let block = |start: usize| -> (String, usize) {
        let mut text = String::new();
        let mut i = start + 1;
        while i < lines.len() && lines[i].trim_end() != "```" {
            text.push_str(lines[i]);
            text.push('\n');
            i += 1;
        }
        (text, i + 1)
    };
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        if lines[i].trim_end() != "```sh" {
            i += 1;
            continue;
        }
        let (script, next) = block(i);
        let mut example = Example {
            line: i + 1,
            script,
            stdout: None,
        };
        i = next;
        let mut j = i;
        while j < lines.len() && lines[j].trim().is_empty() {
            j += 1;
        }
        if j < lines.len() && lines[j].trim_end() == "```text" {
            let (stdout, next) = block(j);
            example.stdout = Some(stdout);
            i = next;
        }
        out.push(example);
    }
    out
}

/// Why `script` may not run as an example, if it may not: an early-closing reader after a pipe.
fn refused(script: &str) -> Option<String> {
    for line in script.lines().filter(|l| !l.trim_start().starts_with('#')) {
        for stage in line.split('|').skip(1) {
            let mut words = stage.split_whitespace();
            if words.next() != Some("grep") {
                continue;
            }
            let closes_early = words.take_while(|w| w.starts_with('-')).any(|w| {
                matches!(w, "--quiet" | "--silent" | "--files-with-matches")
                    || w.starts_with("--max-count")
                    || (!w.starts_with("--") && w.contains(['q', 'm', 'l']))
            });
            if closes_early {
                return Some(format!(
                    "`{}`: grep stops reading early after a pipe (use head, which the examples \
                     drain)",
                    line.trim()
                ));
            }
        }
    }
    None
}

/// Runs one example's script under the prelude in `dir`, with `envs`.
fn run_script(script: &str, dir: &Path, envs: &[(&str, &str)]) -> Output {
    Command::new("bash")
        .arg("-c")
        .arg(format!("{PRELUDE}{script}"))
        .current_dir(dir)
        .envs(envs.iter().copied())
        .env("NO_COLOR", "1")
        .output()
        .unwrap()
}

#[test]
fn readme_examples_run() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let examples = examples(&readme);
    assert!(
        examples.len() >= 5,
        "the README should carry runnable examples"
    );

    let sim = support::Sim::start(&["--tls"]);
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_ovirt-dump"))
        .parent()
        .unwrap()
        .to_path_buf();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let world = support::demo_world_path();
    let ca = sim.ca_file.as_ref().unwrap().to_str().unwrap().to_string();
    let envs = [
        ("PATH", path.as_str()),
        ("OVIRT_URL", sim.url.as_str()),
        ("OVIRT_USER", sim.user.as_str()),
        ("OVIRT_PASSWORD", sim.password.as_str()),
        ("OVIRT_CA", ca.as_str()),
        ("LIFTKIT_WORLD", world.to_str().unwrap()),
    ];
    let scratch = tempfile::tempdir().unwrap();

    for example in &examples {
        let at = format!("README.md:{}", example.line);
        if let Some(why) = refused(&example.script) {
            panic!("{at}: {why}");
        }
        let expected_exit = example
            .script
            .lines()
            .filter_map(|l| l.trim().strip_prefix("# exit "))
            .next_back()
            .map(|n| n.trim().parse::<i32>().unwrap())
            .unwrap_or(0);
        let output = run_script(&example.script, scratch.path(), &envs);
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(
            output.status.code(),
            Some(expected_exit),
            "{at}: example exited {:?}\n--- script\n{}--- stdout\n{stdout}--- stderr\n{stderr}",
            output.status.code(),
            example.script
        );
        assert_eq!(
            stdout,
            example.stdout.as_deref().unwrap_or(""),
            "{at}: stdout is not the ```text block after the example\n--- stderr\n{stderr}"
        );
        for wanted in example
            .script
            .lines()
            .filter_map(|l| l.trim().strip_prefix("# stderr: "))
        {
            assert!(
                stderr.lines().any(|l| l == wanted),
                "{at}: no stderr line {wanted:?}\n--- stderr\n{stderr}"
            );
        }
    }
}

/// A writer that outlives an early-closing reader is no failure: `seq` prints far more than a
/// pipe holds, so without the draining `head` it always dies of SIGPIPE under pipefail.
#[test]
fn a_pipeline_into_head_succeeds_whatever_the_writer_does_after() {
    let dir = tempfile::tempdir().unwrap();
    let out = run_script("seq 1 200000 | head -n 2\n", dir.path(), &[]);
    assert_eq!(
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).as_ref()
        ),
        (Some(0), "1\n2\n"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A failing command still fails the example, in a pipeline or not.
    let out = run_script("false | head -n 1\n", dir.path(), &[]);
    assert_eq!(out.status.code(), Some(1));
    let out = run_script(
        "head -n 1 no-such-file\necho not reached\n",
        dir.path(),
        &[],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
}

#[test]
fn early_closing_readers_after_a_pipe_are_refused() {
    for script in [
        "grep x f | grep -q y\n",
        "grep x f | grep -m1 y\n",
        "grep x f | grep -c -m 1 y\n",
        "grep x f | grep --max-count=1 y\n",
    ] {
        assert!(refused(script).is_some(), "{script}");
    }
    for script in [
        "grep -m1 x f | grep -o y\n",
        "grep -c x f\n",
        "grep x f | head -1 | grep -o '\"a\":[^,]*'\n",
        "# grep x f | grep -q y\n",
    ] {
        assert_eq!(refused(script), None, "{script}");
    }
}
