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

#[test]
fn every_man_page_prints_the_exit_code_table() {
    for cmd in commands() {
        let (file, bytes) = render(cmd);
        let text = String::from_utf8(bytes).unwrap();
        for code in common::ExitCode::ALL {
            assert!(
                text.contains(code.meaning().split(' ').next().unwrap()),
                "{file} lacks exit code {}",
                code.code()
            );
        }
        assert!(
            text.contains("Exit status"),
            "{file} lacks the exit-code table"
        );
    }
}
