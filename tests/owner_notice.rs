//! owner-notice on the demo lab: the real pipeline (ovirt-dump over TLS, vm-select, owner-group,
//! ip-budget --allocate, rbac-gen, plan-gen, plan-run --simulate) feeds owner-notice; its notices
//! are read back with independent parsers (pulldown-cmark for Markdown, mail-parser for the .eml
//! messages, csv for the rows) and checked against the world file and the pipeline's own outputs.

mod pipeline;
mod support;

use pipeline::*;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

const NOTICE: &str = env!("CARGO_BIN_EXE_owner-notice");
const SHARED_VM: &str = "ba_shared_vm_1";

/// The pipeline's outputs, as `make demo` makes them (tests/demo.sh).
struct Demo {
    dir: tempfile::TempDir,
}

impl Demo {
    fn file(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
    fn arg(&self, name: &str) -> String {
        self.file(name).to_str().unwrap().to_string()
    }
}

fn bin(name: &str) -> String {
    format!("{}/{name}", Path::new(NOTICE).parent().unwrap().display())
}

/// Runs `tool` with `args`, stdout to `out`; fails unless it exits with one of `codes`.
fn step(tool: &str, args: &[&str], out: &Path, codes: &[i32]) {
    let o = run(&bin(tool), args, b"");
    assert!(
        codes.contains(&code(&o)),
        "{tool} {args:?}: exit {}: {}",
        code(&o),
        stderr(&o)
    );
    std::fs::write(out, &o.stdout).unwrap();
}

fn demo() -> &'static Demo {
    static DEMO: OnceLock<Demo> = OnceLock::new();
    DEMO.get_or_init(|| {
        let demo = Demo {
            dir: tempfile::tempdir().unwrap(),
        };
        let f = |n: &str| demo.arg(n);
        let records = demo_records().to_str().unwrap();
        let active = ["--active-within", "180d", "--now", "2026-11-26T00:00:00Z"];
        let mut args = active.to_vec();
        args.push(records);
        step("vm-select", &args, &demo.file("active.jsonl"), &[0]);
        let owner_group = ["--exclude", "admin@internal", "--exclude", "svc-backup"];
        let mut args = owner_group.to_vec();
        let active = f("active.jsonl");
        args.push(&active);
        step("owner-group", &args, &demo.file("selected.jsonl"), &[0]);
        let selected = f("selected.jsonl");
        let map = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/demo-networks.map");
        let map = map.to_str().unwrap();
        // The /28 for tlv-apps is too small: ip-budget exits 1 and allocates what it can.
        step(
            "ip-budget",
            &[
                "--map-file",
                map,
                "--subnet",
                "vm-networks/rdu-vlan201=10.10.0.0/22",
                "--subnet",
                "vm-networks/tlv-apps=10.20.0.0/28",
                "--reserve",
                "10.10.0.1",
                "--reserve",
                "10.20.0.1",
                "--reserve",
                "10.10.0.2-10.10.0.50",
                "--allocate",
                &selected,
            ],
            &demo.file("allocations.jsonl"),
            &[0, 1],
        );
        step(
            "rbac-gen",
            &["--strip-domain", &selected],
            &demo.file("rbac.jsonl"),
            &[0],
        );
        let preflight = f("preflight.jsonl");
        step(
            "plan-gen",
            &[
                "--url",
                "https://engine.rdu.lab.example.com/ovirt-engine/api",
                "--namespace",
                "rhv-migration",
                "--secret",
                "ovirt-engine",
                "--map-file",
                map,
                "--max-vms-per-plan",
                "20",
                "--report",
                &preflight,
                &selected,
            ],
            &demo.file("plans.jsonl"),
            &[1],
        );
        step(
            "plan-run",
            &[
                "--simulate",
                "--bandwidth",
                "10Gbit/s",
                "--max-running-plans",
                "4",
                "--start",
                "2026-11-27T22:00:00Z",
                &f("rbac.jsonl"),
                &f("plans.jsonl"),
            ],
            &demo.file("schedule.jsonl"),
            &[0],
        );
        demo
    })
}

/// owner-notice over the demo's outputs, with `extra` arguments; its output and exit code.
fn notice(extra: &[&str]) -> std::process::Output {
    notice_with(Some("--events"), extra)
}

/// [`notice`], the schedule given under the flag `events` (or not at all).
fn notice_with(events: Option<&str>, extra: &[&str]) -> std::process::Output {
    let d = demo();
    let mut args: Vec<String> = vec![
        d.arg("selected.jsonl"),
        "--manifests".into(),
        d.arg("rbac.jsonl"),
        "--manifests".into(),
        d.arg("plans.jsonl"),
        "--preflight".into(),
        d.arg("preflight.jsonl"),
    ];
    if let Some(flag) = events {
        args.extend([flag.into(), d.arg("schedule.jsonl")]);
    }
    args.extend([
        "--allocations".into(),
        d.arg("allocations.jsonl"),
        "--window".into(),
        "22:00-06:00".into(),
        "--time-zone".into(),
        "UTC".into(),
    ]);
    args.extend(extra.iter().map(|s| s.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    run(NOTICE, &args, b"")
}

/// The text a CommonMark reader shows of `markdown` (text and code spans), and whether any
/// markup came from a value: raw HTML, a link, an image.
fn rendered(markdown: &str) -> (String, usize) {
    use pulldown_cmark::{Event, Parser, Tag};
    let mut text = String::new();
    let mut markup = 0;
    for event in Parser::new(markdown) {
        match event {
            Event::Text(t) | Event::Code(t) => text.push_str(&t),
            Event::SoftBreak | Event::HardBreak => text.push(' '),
            Event::End(_) => text.push('\n'),
            Event::Html(_) | Event::InlineHtml(_) => markup += 1,
            Event::Start(Tag::Link { .. } | Tag::Image { .. }) => markup += 1,
            _ => {}
        }
    }
    (text, markup)
}

/// The world's VM named `name`.
fn world_vm(name: &str) -> &'static Value {
    world()["vms"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == name)
        .unwrap()
}

/// "2026-11-28T00:20:52Z" as the notices show it in UTC: "2026-11-28 00:20 UTC".
fn shown(rfc3339: &str) -> String {
    format!("{} {} UTC", &rfc3339[..10], &rfc3339[11..16])
}

/// The shared VM's window from the schedule: its plan's start, its own end.
fn shared_window() -> (String, String) {
    let d = demo();
    let id = world_vm(SHARED_VM)["id"].as_str().unwrap();
    let plans = pipeline::read_lines(&d.file("plans.jsonl"));
    let plan = plans
        .iter()
        .find(|o| {
            o["kind"] == "Plan"
                && o["spec"]["vms"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|v| v["id"] == id)
        })
        .expect("the shared VM is in a plan");
    let events = pipeline::read_lines(&d.file("schedule.jsonl"));
    let started = events
        .iter()
        .find(|e| e["event"] == "started" && e["plan"] == plan["metadata"]["name"])
        .unwrap();
    let ended = events
        .iter()
        .find(|e| e["event"] == "vm-succeeded" && e["vm_id"] == id)
        .unwrap();
    (
        shown(started["time"].as_str().unwrap()),
        shown(ended["time"].as_str().unwrap()),
    )
}

#[test]
fn alice_and_bob_each_get_the_shared_vm_its_namespace_and_the_same_window() {
    let out = tempfile::tempdir().unwrap();
    let o = notice(&["-o", out.path().to_str().unwrap()]);
    // The demo's groups have no e-mail in the world: exit 1, each listed.
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    let id = world_vm(SHARED_VM)["id"].as_str().unwrap();
    let owners = &world_owners()[id];
    let principals: Vec<&str> = owners.iter().map(|o| o.2.as_str()).collect();
    assert_eq!(principals, ["alice", "bob"], "the world's owners");
    let namespace = &world_namespaces()[id];
    assert_eq!(namespace, "alice-bob-ns");
    let (start, end) = shared_window();
    let window = format!("Window: {start} to {end}");
    let mut sections = Vec::new();
    for owner in principals {
        let md = std::fs::read_to_string(out.path().join(format!("user-{owner}.md"))).unwrap();
        let (text, markup) = rendered(&md);
        assert_eq!(markup, 0, "{owner}: no markup from values:\n{md}");
        let at = text
            .find(&format!("{SHARED_VM}\n"))
            .unwrap_or_else(|| panic!("{owner}'s notice names {SHARED_VM}:\n{text}"));
        let section: String = text[at..].lines().take(5).collect::<Vec<_>>().join("\n");
        assert!(
            section.contains(&format!("Target: namespace {namespace}")),
            "{section}"
        );
        assert!(section.contains(&window), "{owner}: {window}:\n{section}");
        sections.push(section);
        // Access: rbac-gen's RoleBinding for the owner in the namespace.
        assert!(
            text.contains(&format!(
                "Namespace {namespace}: the RoleBinding liftkit-user-{owner} gives User {owner} the ClusterRole admin."
            )),
            "{text}"
        );
    }
    assert_eq!(
        sections[0], sections[1],
        "the same VM, namespace and window"
    );
}

/// The owners of the selected VMs without an e-mail in the world: every group (the world gives
/// groups none) and any user without one.
fn owners_without_address() -> BTreeSet<(String, String)> {
    let d = demo();
    let with_email: BTreeSet<&str> = world()["users"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|u| u["email"].is_string())
        .map(|u| u["user_name"].as_str().unwrap())
        .collect();
    let mut missing = BTreeSet::new();
    for vm in pipeline::read_lines(&d.file("selected.jsonl")) {
        for (kind, principal, short) in &world_owners()[vm["id"].as_str().unwrap()] {
            if kind == "group" || !with_email.contains(principal.as_str()) {
                missing.insert((kind.clone(), short.clone()));
            }
        }
    }
    missing
}

#[test]
fn every_owner_without_an_address_is_listed_and_the_exit_code_says_so() {
    let out = tempfile::tempdir().unwrap();
    let o = notice(&[
        "--format",
        "eml",
        "--from",
        "Migration team <migration@example.com>",
        "--date",
        "2026-11-20T09:00:00Z",
        "-o",
        out.path().to_str().unwrap(),
    ]);
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    let err = stderr(&o);
    let missing = owners_without_address();
    assert!(!missing.is_empty());
    let listed: BTreeSet<(String, String)> = err
        .lines()
        .filter_map(|l| l.strip_prefix("owner-notice: no address: "))
        .map(|l| {
            let mut words = l.split(' ');
            (
                words.next().unwrap().to_string(),
                words.next().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(listed, missing, "{err}");
    for (kind, name) in &missing {
        assert!(
            !out.path().join(format!("{kind}-{name}.eml")).exists(),
            "no message without a recipient"
        );
    }
}

/// The message `file` in `dir`, parsed by mail-parser.
fn parse_eml(dir: &Path, file: &str) -> (Vec<u8>, mail_parser::Message<'static>) {
    let bytes = std::fs::read(dir.join(file)).unwrap();
    let message = mail_parser::MessageParser::default()
        .parse(&bytes)
        .unwrap()
        .into_owned();
    (bytes, message)
}

#[test]
fn messages_parse_with_their_headers_and_non_ascii_names_round_trip() {
    let out = tempfile::tempdir().unwrap();
    let map = out.path().join("addresses.csv");
    // A group gets an address and a display name that is not ASCII.
    std::fs::write(
        &map,
        "owner,address,display name\ndba,dba-team@example.com,Équipe DBA – Zoë Ørsted\n",
    )
    .unwrap();
    let dir = out.path().join("eml");
    let o = notice(&[
        "--format",
        "eml",
        "--from",
        "Équipe migration <migration@example.com>",
        "--reply-to",
        "help@example.com",
        "--subject",
        "Déménagement de vos VM: {{ vms|length }} VM(s)",
        "--date",
        "2026-11-20T09:00:00Z",
        "--address-map",
        map.to_str().unwrap(),
        "-o",
        dir.to_str().unwrap(),
    ]);
    assert_eq!(code(&o), 1, "other groups still lack one: {}", stderr(&o));
    let alice = world()["users"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["principal"] == "alice")
        .unwrap();
    let (raw, m) = parse_eml(&dir, "user-alice.eml");
    let to = m.to().unwrap().first().unwrap();
    assert_eq!(to.address(), alice["email"].as_str());
    let full_name = format!(
        "{} {}",
        alice["name"].as_str().unwrap(),
        alice["last_name"].as_str().unwrap()
    );
    assert_eq!(to.name(), Some(full_name.as_str()));
    let from = m.from().unwrap().first().unwrap();
    assert_eq!(from.name(), Some("Équipe migration"));
    assert_eq!(from.address(), Some("migration@example.com"));
    assert_eq!(
        m.reply_to().unwrap().first().unwrap().address(),
        Some("help@example.com")
    );
    let alice_vms = pipeline::read_lines(&demo().file("plans.jsonl"))
        .iter()
        .filter(|o| o["kind"] == "Plan")
        .flat_map(|p| p["spec"]["vms"].as_array().unwrap().clone())
        .filter(|v| {
            world_owners()[v["id"].as_str().unwrap()]
                .iter()
                .any(|o| o.2 == "alice")
        })
        .count();
    assert_eq!(
        m.subject(),
        Some(format!("Déménagement de vos VM: {alice_vms} VM(s)").as_str())
    );
    let date = m.date().unwrap();
    assert_eq!(
        (date.year, date.month, date.day, date.hour, date.minute),
        (2026, 11, 20, 9, 0)
    );
    let id = m.message_id().unwrap();
    assert!(id.ends_with("@example.com"), "{id}");
    let body = m.body_text(0).unwrap();
    assert!(body.contains(SHARED_VM), "{body}");
    assert!(body.contains("alice-bob-ns"), "{body}");
    // The raw message: ASCII only (encoded words and transfer encoding), CRLF line ends, no line
    // longer than RFC 5322's 998 characters, MIME-Version present.
    assert!(raw.is_ascii(), "8-bit bytes in the message");
    let text = String::from_utf8(raw).unwrap();
    assert!(text.lines().all(|l| l.len() <= 998));
    assert!(text.contains("MIME-Version: 1.0\r\n"), "{text}");
    assert!(text.contains("=?utf-8?"), "RFC 2047 words: {text}");
    // The group with a mapped address has its message, its non-ASCII name intact.
    let (_, m) = parse_eml(&dir, "group-dba.eml");
    let to = m.to().unwrap().first().unwrap();
    assert_eq!(to.name(), Some("Équipe DBA – Zoë Ørsted"));
    assert_eq!(to.address(), Some("dba-team@example.com"));
    let ids: BTreeSet<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| {
            let (_, m) = parse_eml(&dir, e.unwrap().file_name().to_str().unwrap());
            m.message_id().unwrap().to_string()
        })
        .collect();
    assert_eq!(
        ids.len(),
        std::fs::read_dir(&dir).unwrap().count(),
        "unique Message-IDs"
    );
}

/// A name an engine or guest may report, with Markdown, HTML and header injection in it.
const EVIL_NAME: &str = "evil*vm*_[click](http://evil.example)<script>x</script>\n# Bcc: x";
const EVIL_FQDN: &str = "db.example.com\r\nBcc: victim@example.com";

#[test]
fn guest_and_engine_data_is_escaped_in_markdown_and_cannot_inject_headers() {
    let dir = tempfile::tempdir().unwrap();
    let record = json!({"schema": 1, "id": "vm-1", "name": EVIL_NAME, "fqdn": EVIL_FQDN,
        "target_namespace": "alice-ns",
        "permissions": [{"id": "p1", "role": {"id": "r", "name": "UserVmManager"},
            "user": {"id": "u1", "principal": "alice", "user_name": "alice@example.com-authz",
                     "name": "Alice\r\nBcc: victim@example.com", "last_name": "<b>A</b>",
                     "email": "alice@example.com"}}],
        "owners": [{"kind": "user", "name": "alice", "principal": "alice@example.com-authz",
                    "roles": ["UserVmManager"]}]});
    let allocation = json!({"vm": EVIL_NAME, "vm_id": "vm-1", "nic": "nic1`` `x",
        "mac": "56:6f:1a:00:00:01", "source_network": "RDU/vlan201", "target": "multus:a/b",
        "old_ipv4": ["10.0.0.5"], "old_ipv6": [], "new_ipv4": "10.10.0.60", "new_ipv6": null,
        "changed": true, "fqdn": EVIL_FQDN});
    let records = dir.path().join("records.jsonl");
    std::fs::write(&records, format!("{record}\n")).unwrap();
    let allocations = dir.path().join("allocations.jsonl");
    std::fs::write(&allocations, format!("{allocation}\n")).unwrap();
    let base = [
        records.to_str().unwrap(),
        "--allocations",
        allocations.to_str().unwrap(),
    ];

    let md = dir.path().join("md");
    let mut args = base.to_vec();
    args.extend(["-o", md.to_str().unwrap()]);
    let o = run(NOTICE, &args, b"");
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let text = std::fs::read_to_string(md.join("user-alice.md")).unwrap();
    let (shown, markup) = rendered(&text);
    assert_eq!(markup, 0, "no link or HTML from a value:\n{text}");
    // The name shows literally, its line break as `\n`: it starts no heading of its own.
    let literal = EVIL_NAME.replace('\n', "\\n");
    assert!(shown.contains(&literal), "{shown}");
    assert!(shown.contains("db.example.com\\r\\nBcc: victim@example.com"));
    assert!(shown.contains("nic1`` `x"), "{shown}");
    let headings = pulldown_cmark::Parser::new(&text)
        .filter(|e| {
            matches!(
                e,
                pulldown_cmark::Event::Start(pulldown_cmark::Tag::Heading { .. })
            )
        })
        .count();
    assert_eq!(
        headings, 4,
        "the template's only: title, Access, Your virtual machines, the VM's:\n{text}"
    );

    let eml = dir.path().join("eml");
    let mut args = base.to_vec();
    args.extend([
        "--format",
        "eml",
        "--from",
        "ops@example.com",
        "--subject",
        "About {{ vms[0].name }} at {{ vms[0].fqdn }}",
        "-o",
        eml.to_str().unwrap(),
    ]);
    let o = run(NOTICE, &args, b"");
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let (raw, m) = parse_eml(&eml, "user-alice.eml");
    let raw = String::from_utf8(raw).unwrap();
    let head = &raw[..raw.find("\r\n\r\n").unwrap()];
    assert!(
        !head.to_ascii_lowercase().contains("\r\nbcc:"),
        "no injected header:\n{head}"
    );
    assert!(m.bcc().is_none());
    assert_eq!(m.to().unwrap().iter().count(), 1);
    assert_eq!(
        m.to().unwrap().first().unwrap().address(),
        Some("alice@example.com")
    );
    let subject = m.subject().unwrap();
    assert!(!subject.contains(['\r', '\n']), "{subject:?}");
    assert!(subject.contains("Bcc: victim@example.com"), "{subject:?}");
}

#[test]
fn csv_rows_name_owner_and_vm_and_neutralise_formulas() {
    let o = notice(&["--format", "csv"]);
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    let mut reader = csv::Reader::from_reader(&o.stdout[..]);
    let headers = reader.headers().unwrap().clone();
    let col = |name: &str| headers.iter().position(|h| h == name).unwrap();
    let rows: Vec<csv::StringRecord> = reader.records().map(|r| r.unwrap()).collect();
    let shared: Vec<&csv::StringRecord> =
        rows.iter().filter(|r| &r[col("vm")] == SHARED_VM).collect();
    let owners: Vec<&str> = shared.iter().map(|r| &r[col("owner")]).collect();
    assert_eq!(owners, ["alice", "bob"]);
    let (start, end) = shared_window();
    for r in &shared {
        assert_eq!(&r[col("namespace")], "alice-bob-ns");
        assert_eq!((&r[col("start")], &r[col("end")]), (&*start, &*end));
    }
    // A VM record whose name is a formula.
    let dir = tempfile::tempdir().unwrap();
    let records = dir.path().join("r.jsonl");
    let record = json!({"schema": 1, "id": "x", "name": "=HYPERLINK(\"http://evil\")",
        "target_namespace": "bob-ns", "owners": [{"kind": "user", "name": "bob",
        "principal": "bob@example.com-authz", "roles": ["UserVmManager"]}]});
    std::fs::write(&records, format!("{record}\n")).unwrap();
    let o = run(NOTICE, &["--format", "csv", records.to_str().unwrap()], b"");
    assert_eq!(code(&o), 1, "bob has no address here: {}", stderr(&o));
    assert!(stderr(&o).contains("owner-notice: no address: user bob"));
    let text = String::from_utf8(o.stdout).unwrap();
    assert!(text.contains("'=HYPERLINK"), "{text}");
}

/// --schedule, owner-notice's name for --events before it took report's, still reads plan-run's
/// events: the same notices, and not those written without them.
#[test]
fn the_old_name_of_events_still_reads_the_schedule() {
    let csv = ["--format", "csv"];
    let (new, old) = (notice(&csv), notice_with(Some("--schedule"), &csv));
    let without = notice_with(None, &csv);
    assert_eq!(code(&old), code(&new), "{}", stderr(&old));
    assert_eq!(old.stdout, new.stdout);
    assert_ne!(
        without.stdout, new.stdout,
        "the schedule changes the notices"
    );
}

#[test]
fn after_the_move_names_what_moved_and_the_checks_that_failed() {
    let d = demo();
    // vm-verify's record shape: the shared VM boots but its DNS check fails; every other VM the
    // simulation moved passes.
    let mut verify = String::new();
    for e in pipeline::read_lines(&d.file("schedule.jsonl")) {
        if e["event"] != "vm-succeeded" {
            continue;
        }
        let vm = e["vm_name"].as_str().unwrap();
        verify += &format!(
            "{}\n",
            json!({"vm": vm, "check": "boot", "ok": true, "message": ""})
        );
        if vm == SHARED_VM {
            verify += &format!(
                "{}\n",
                json!({"vm": vm, "check": "dns", "ok": false, "namespace": "alice-bob-ns",
                       "message": "ba-shared-vm-1.example.com resolves to the old address",
                       "expected": "10.10.0.51", "actual": "10.10.201.84"})
            );
        }
    }
    let checks = d.file("verify.jsonl");
    std::fs::write(&checks, verify).unwrap();
    let out = tempfile::tempdir().unwrap();
    let o = notice(&[
        "--verify",
        checks.to_str().unwrap(),
        "-o",
        out.path().to_str().unwrap(),
    ]);
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    let (text, markup) =
        rendered(&std::fs::read_to_string(out.path().join("user-alice.md")).unwrap());
    assert_eq!(markup, 0);
    let at = text.find(&format!("{SHARED_VM}\n")).unwrap();
    let section = &text[at..];
    assert!(
        section.contains("Moved, but some checks failed"),
        "{section}"
    );
    assert!(
        section.contains("dns: ba-shared-vm-1.example.com resolves to the old address"),
        "{section}"
    );
    assert!(text.contains("What to check"), "{text}");
}

#[test]
fn a_team_template_gets_the_values_escaped_and_a_broken_one_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let template = dir.path().join("ours.md.j2");
    std::fs::write(
        &template,
        "Dear {{ owner.display_name|prose }}:\n{% for vm in vms %}* {{ vm.name }} -> {{ vm.namespace }}\n{% endfor %}",
    )
    .unwrap();
    let out = dir.path().join("md");
    let o = notice(&[
        "--template",
        template.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    let text = std::fs::read_to_string(out.join("user-alice.md")).unwrap();
    assert!(text.starts_with("Dear Alice Anderson:\n"), "{text}");
    assert!(
        text.contains(&format!("* `{SHARED_VM}` -> `alice-bob-ns`\n")),
        "{text}"
    );
    // A template naming a value that does not exist is a usage error, and writes nothing.
    std::fs::write(&template, "{{ owner.no_such_field }}").unwrap();
    let out = dir.path().join("none");
    let o = notice(&[
        "--template",
        template.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ]);
    assert_fails(&o, 2, "owner-notice: ");
    assert!(!out.exists() || std::fs::read_dir(&out).unwrap().count() == 0);
}

#[test]
fn a_live_runs_failed_vm_and_a_warm_plans_cutover_are_told() {
    let dir = tempfile::tempdir().unwrap();
    let owner = json!([{"kind": "user", "name": "bob", "principal": "bob@example.com-authz",
                        "roles": ["UserVmManager"]}]);
    let records: String = [("id-a", "app-a"), ("id-b", "app-b")]
        .iter()
        .map(|(id, name)| {
            format!(
                "{}\n",
                json!({"schema": 1, "id": id, "name": name, "target_namespace": "bob-ns",
                       "owners": owner})
            )
        })
        .collect();
    let plan = |name: &str, id: &str, warm: bool| {
        json!({"apiVersion": "forklift.konveyor.io/v1beta1", "kind": "Plan",
               "metadata": {"name": name, "namespace": "mig"},
               "spec": {"targetNamespace": "bob-ns", "type": if warm {"warm"} else {"cold"},
                        "vms": [{"id": id, "name": id}]}})
    };
    let events = [
        json!({"time": "2026-11-27T22:00:00Z", "event": "started", "plan": "cold-plan", "namespace": "mig"}),
        json!({"time": "2026-11-27T22:00:00Z", "event": "started", "plan": "warm-plan", "namespace": "mig"}),
        json!({"time": "2026-11-27T22:45:00Z", "event": "vm-failed", "plan": "cold-plan", "namespace": "mig",
               "vm_id": "id-a", "vm_name": "app-a", "error": "DiskTransfer: no space left"}),
        json!({"time": "2026-11-27T23:10:00Z", "event": "vm-succeeded", "plan": "warm-plan", "namespace": "mig",
               "vm_id": "id-b", "vm_name": "app-b"}),
    ];
    let write = |name: &str, lines: &[Value]| {
        let p = dir.path().join(name);
        let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
        std::fs::write(&p, text).unwrap();
        p.to_str().unwrap().to_string()
    };
    let records_path = dir.path().join("r.jsonl");
    std::fs::write(&records_path, records).unwrap();
    let plans = write(
        "plans.jsonl",
        &[
            plan("cold-plan", "id-a", false),
            plan("warm-plan", "id-b", true),
        ],
    );
    let events = write("events.jsonl", &events);
    let out = dir.path().join("md");
    let o = run(
        NOTICE,
        &[
            records_path.to_str().unwrap(),
            "--manifests",
            &plans,
            "--events",
            &events,
            "--time-zone",
            "UTC",
            "-o",
            out.to_str().unwrap(),
        ],
        b"",
    );
    assert_eq!(code(&o), 1, "bob has no address here: {}", stderr(&o));
    let (text, _) = rendered(&std::fs::read_to_string(out.join("user-bob.md")).unwrap());
    assert!(
        text.contains("Times are those of the migration run"),
        "{text}"
    );
    assert!(
        text.contains("Result: Failed: DiskTransfer: no space left"),
        "{text}"
    );
    // Forklift v2.12.5 pkg/controller/plan/migrator/base/migrator.go: coldItinerary powers the
    // source off right after Started (StorePowerState, PowerOffSource) and the VM runs again at
    // CreateVM: down at most from the plan's start (22:00) to the VM's end (22:45);
    // warmItinerary powers it off only after the precopies, at the cutover.
    assert!(text.contains("Downtime: up to 45m 00s"), "{text}");
    assert!(text.contains("it stops at the cutover only"), "{text}");
    assert!(
        text.contains("Window: 2026-11-27 22:00 UTC to 2026-11-27 23:10 UTC"),
        "{text}"
    );

    // With plan-run's warm schedule (issue 15 part 3): its `cutover` event forecasts the plan's
    // downtime, a simulated vm-succeeded gives the VM's own; the VM's wins, the forecast stands
    // in for VMs without one (a live run's), and the notice says the VM runs during precopies.
    for (vm_downtime, said) in [(Some(63.4), "up to 1m 03s"), (None, "up to 2m 00s")] {
        let mut succeeded = json!({"time": "2026-11-27T23:10:00Z", "event": "vm-succeeded",
            "plan": "warm-plan", "namespace": "mig", "vm_id": "id-b", "vm_name": "app-b"});
        if let Some(secs) = vm_downtime {
            succeeded["downtime_secs"] = json!(secs);
        }
        let warm_events = [
            json!({"time": "2026-11-27T20:00:00Z", "event": "started", "plan": "warm-plan", "namespace": "mig"}),
            json!({"time": "2026-11-27T20:00:00Z", "event": "cutover", "plan": "warm-plan", "namespace": "mig",
                   "cutover": "2026-11-27T23:09:00Z", "downtime_secs": 120.0, "fits": true}),
            succeeded,
        ];
        let events = write("warm-events.jsonl", &warm_events);
        let out = dir.path().join("md-warm");
        run(
            NOTICE,
            &[
                records_path.to_str().unwrap(),
                "--manifests",
                &plans,
                "--events",
                &events,
                "--time-zone",
                "UTC",
                "-o",
                out.to_str().unwrap(),
            ],
            b"",
        );
        let (text, _) = rendered(&std::fs::read_to_string(out.join("user-bob.md")).unwrap());
        let line = text
            .lines()
            .skip_while(|l| !l.contains("app-b"))
            .find(|l| l.contains("Downtime:"))
            .unwrap_or_else(|| panic!("{text}"))
            .to_string();
        assert!(line.contains(said), "{line}");
        assert!(line.contains("2026-11-27 23:09 UTC"), "{line}");
        assert!(
            line.contains("keeps running while its disks are copied (precopies)"),
            "{line}"
        );
    }
}
