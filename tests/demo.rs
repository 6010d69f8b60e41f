//! `make demo` itself (tests/demo.sh with the built binaries), live part included: the test bed is
//! built before any test runs (make test's testbed-bin), so the demo runs the plans on its own
//! kube-apiserver with forklift-sim, then vm-verify and owner-notice --verify (issue 16's done-when
//! on the whole demo lab). Expectations come from the world file (tests/worlds/demo.json:
//! `after_move`, owners) and the plans the demo wrote, never from the tools' code.

mod pipeline;
mod support;

use serde_json::Value;
use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Stdio};

/// The VM ids in the live run's Plans.
fn planned(plans: &[Value]) -> BTreeSet<String> {
    plans
        .iter()
        .filter(|o| o["kind"] == "Plan")
        .flat_map(|p| p["spec"]["vms"].as_array().unwrap().iter())
        .map(|v| v["id"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn make_demo_runs_live_and_vm_verify_names_exactly_the_planted_faults() {
    let root = support::repo_root();
    let out = tempfile::tempdir().unwrap();
    let bin = Path::new(env!("CARGO_BIN_EXE_vm-verify")).parent().unwrap();
    let run = Command::new(root.join("tests/demo.sh"))
        .arg(bin)
        .current_dir(&root)
        .env("DEMO_OUT", out.path())
        .env("DEMO_CLUSTER", "1")
        .env("NO_COLOR", "1")
        .env_remove("RUST_LOG")
        .env_remove("KUBECONFIG")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "make demo: {stderr}");
    let live = out.path().join("live");

    // The failures: each planted after-the-move fault of a planned VM (the DNS check is not run
    // in the demo: no --dns-server), and rdu-web-03, whose transfer the demo makes fail.
    let plans = pipeline::read_lines(&live.join("plans.jsonl"));
    let ids = planned(&plans);
    let world = pipeline::world();
    let planned_vms: Vec<&Value> = world["vms"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|vm| ids.contains(vm["id"].as_str().unwrap()))
        .collect();
    let mut expected: BTreeSet<(String, String)> = planned_vms
        .iter()
        .filter_map(|vm| {
            let check = pipeline::after_move_check(vm)?;
            let name = vm["name"].as_str().unwrap().to_string();
            (check != "dns").then(|| (name, check.to_string()))
        })
        .collect();
    assert_eq!(
        expected.len(),
        4,
        "four planted faults are planned: {expected:?}"
    );
    expected.insert(("rdu-web-03".into(), "migrated".into()));
    let findings = pipeline::read_lines(&live.join("findings.jsonl"));
    let failed: BTreeSet<(String, String)> = findings
        .iter()
        .filter(|f| f["ok"] == false)
        .map(|f| {
            let s = |k: &str| f[k].as_str().unwrap().to_string();
            (s("vm"), s("check"))
        })
        .collect();
    assert_eq!(failed, expected, "{stderr}");
    // Every planned VM was checked (--all: a finding per check, passed or not).
    let checked: BTreeSet<&str> = findings.iter().filter_map(|f| f["vm"].as_str()).collect();
    let names: BTreeSet<&str> = planned_vms
        .iter()
        .map(|vm| vm["name"].as_str().unwrap())
        .collect();
    assert_eq!(checked, names);

    // The after-the-move notice of an owner of a failed VM names it; rdu-web-03's owners come
    // from the world file.
    let vm = world["vms"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "rdu-web-03")
        .unwrap();
    let owners = pipeline::world_owners();
    let (kind, user, _) = owners[vm["id"].as_str().unwrap()]
        .first()
        .expect("rdu-web-03 has an owner")
        .clone();
    let notices: Vec<_> = std::fs::read_dir(live.join("notices-after"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    // owner-notice names a notice KIND-NAME.md (user-dave.md, group-qa.md).
    let file = format!("{kind}-{}.md", user.split('@').next().unwrap());
    let notice = notices
        .iter()
        .find(|p| p.file_name().unwrap().to_string_lossy() == file)
        .unwrap_or_else(|| panic!("no notice for {user} in {notices:?}"));
    let text = std::fs::read_to_string(notice).unwrap();
    assert!(text.contains("rdu-web-03"), "{text}");
    // The report carries vm-verify's findings.
    let html = std::fs::read_to_string(out.path().join("report.html")).unwrap();
    let section = html
        .split("<section id=\"verification\">")
        .nth(1)
        .expect("the report has a verification section");
    let section = section.split("</section>").next().unwrap();
    for (vm, _) in &failed {
        assert!(
            section.contains(vm.as_str()),
            "{vm} not in the report's verification"
        );
    }
}
