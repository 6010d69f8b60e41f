//! The README's examples are tests: every ```sh block runs, in order, in one scratch directory, with
//! the tools on PATH and an engine simulator (demo world, TLS) described by OVIRT_URL, OVIRT_USER,
//! OVIRT_PASSWORD and OVIRT_CA. A block ending in `# exit N` must exit with N; others must succeed.
//! A line `# expect: TEXT` in a block requires TEXT in that block's stdout.

mod support;

use std::path::Path;
use std::process::Command;

struct Example {
    line: usize,
    script: String,
}

fn examples(readme: &str) -> Vec<Example> {
    let mut out = Vec::new();
    let mut current: Option<Example> = None;
    for (index, line) in readme.lines().enumerate() {
        match current.as_mut() {
            None if line.trim_end() == "```sh" => {
                current = Some(Example {
                    line: index + 1,
                    script: String::new(),
                })
            }
            None => {}
            Some(_) if line.trim_end() == "```" => out.push(current.take().unwrap()),
            Some(example) => {
                example.script.push_str(line);
                example.script.push('\n');
            }
        }
    }
    out
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
    let scratch = tempfile::tempdir().unwrap();

    for example in &examples {
        let expected_exit = example
            .script
            .lines()
            .filter_map(|l| l.trim().strip_prefix("# exit "))
            .next_back()
            .map(|n| n.trim().parse::<i32>().unwrap())
            .unwrap_or(0);
        let output = Command::new("bash")
            .arg("-c")
            .arg(format!("set -euo pipefail\n{}", example.script))
            .current_dir(scratch.path())
            .env("PATH", &path)
            .env("OVIRT_URL", &sim.url)
            .env("OVIRT_USER", &sim.user)
            .env("OVIRT_PASSWORD", &sim.password)
            .env("OVIRT_CA", sim.ca_file.as_ref().unwrap())
            .env("LIFTKIT_WORLD", support::demo_world_path())
            .env("NO_COLOR", "1")
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(
            output.status.code(),
            Some(expected_exit),
            "README.md:{}: example exited {:?}\n--- script\n{}--- stdout\n{stdout}--- stderr\n{stderr}",
            example.line,
            output.status.code(),
            example.script
        );
        for wanted in example
            .script
            .lines()
            .filter_map(|l| l.trim().strip_prefix("# expect: "))
        {
            assert!(
                stdout.contains(wanted),
                "README.md:{}: stdout lacks {wanted:?}\n{stdout}",
                example.line
            );
        }
    }
}
