//! report on the demo lab: the real pipeline (ovirt-dump over TLS, vm-select, owner-group,
//! capacity-calc, ip-budget, rbac-gen, plan-gen, plan-run --simulate) feeds report, and the page
//! is read back with an HTML parser (html5ever through scraper): every section is there, each
//! chart has one bar or row per item counted from the inputs here, untrusted names stay text;
//! headless Chromium renders it without console errors and the screenshot is not blank.

mod pipeline;
mod support;

use pipeline::*;
use scraper::{ElementRef, Html, Selector};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

const REPORT: &str = env!("CARGO_BIN_EXE_report");

/// The pipeline's outputs, as `make demo` makes them (tests/demo.sh).
struct Demo {
    _dir: tempfile::TempDir,
    inventory: PathBuf,
    selected: PathBuf,
    capacity: PathBuf,
    addresses: PathBuf,
    preflight: PathBuf,
    events: PathBuf,
    verify: PathBuf,
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Runs `bin` with `args`, stdout to `out`; fails unless it exits with one of `codes`.
fn step(bin: &str, args: &[&str], out: &Path, codes: &[i32]) {
    let o = run(bin, args, b"");
    assert!(
        codes.contains(&code(&o)),
        "{bin} {args:?}: exit {}: {}",
        code(&o),
        stderr(&o)
    );
    std::fs::write(out, &o.stdout).unwrap();
}

fn demo() -> &'static Demo {
    static DEMO: OnceLock<Demo> = OnceLock::new();
    DEMO.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let f = |name: &str| d.join(name);
        // A copy next to the others, so that report names every input relative to one place.
        let inventory = f("inventory.jsonl");
        std::fs::copy(demo_records(), &inventory).unwrap();
        let bin = |name: &str| format!("{}/{name}", Path::new(REPORT).parent().unwrap().display());
        step(
            &bin("vm-select"),
            &[
                "--active-within",
                "180d",
                "--now",
                "2026-11-26T00:00:00Z",
                path(&inventory),
            ],
            &f("active.jsonl"),
            &[0],
        );
        step(
            &bin("owner-group"),
            &[
                "--exclude",
                "admin@internal",
                "--exclude",
                "svc-backup",
                path(&f("active.jsonl")),
            ],
            &f("selected.jsonl"),
            &[0],
        );
        let selected = f("selected.jsonl");
        let map = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/demo-networks.map");
        step(
            &bin("capacity-calc"),
            &[
                "--by",
                "namespace",
                "--storage-map",
                "*=trident-nfs",
                "--available",
                "trident-nfs=40TiB",
                "--totals",
                path(&selected),
            ],
            &f("capacity.jsonl"),
            &[0],
        );
        // The /28 for tlv-apps is too small: ip-budget exits 1 with a shortfall.
        step(
            &bin("ip-budget"),
            &[
                "--map-file",
                path(&map),
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
                path(&selected),
            ],
            &f("addresses.jsonl"),
            &[1],
        );
        step(
            &bin("rbac-gen"),
            &["--strip-domain", path(&selected)],
            &f("rbac.jsonl"),
            &[0],
        );
        step(
            &bin("plan-gen"),
            &[
                "--url",
                "https://engine.rdu.lab.example.com/ovirt-engine/api",
                "--namespace",
                "rhv-migration",
                "--secret",
                "ovirt-engine",
                "--map-file",
                path(&map),
                "--max-vms-per-plan",
                "20",
                "--report",
                path(&f("preflight.jsonl")),
                path(&selected),
            ],
            &f("plans.jsonl"),
            &[1],
        );
        step(
            &bin("plan-run"),
            &[
                "--simulate",
                "--bandwidth",
                "10Gbit/s",
                "--max-running-plans",
                "4",
                "--start",
                "2026-11-27T22:00:00Z",
                path(&f("rbac.jsonl")),
                path(&f("plans.jsonl")),
            ],
            &f("events.jsonl"),
            &[0],
        );
        let verify = f("verify.jsonl");
        std::fs::write(
            &verify,
            verify_records(&pipeline::read_lines(&f("events.jsonl"))),
        )
        .unwrap();
        Demo {
            inventory,
            capacity: f("capacity.jsonl"),
            addresses: f("addresses.jsonl"),
            preflight: f("preflight.jsonl"),
            events: f("events.jsonl"),
            selected,
            verify,
            _dir: dir,
        }
    })
}

/// vm-verify's record shape (the tool is not written yet): every simulated VM passes its boot
/// check, and the first one fails its network check.
fn verify_records(events: &[Value]) -> String {
    let mut text = String::new();
    let vms = events.iter().filter(|e| e["event"] == "vm-succeeded");
    for (i, e) in vms.enumerate() {
        let vm = e["vm_name"].as_str().unwrap();
        text += &format!(
            "{}\n",
            json!({"vm": vm, "check": "boots", "ok": true, "message": ""})
        );
        if i == 0 {
            text += &format!(
                "{}\n",
                json!({"vm": vm, "check": "network", "ok": false, "message": "no address on eth0"})
            );
        }
    }
    text
}

/// report's arguments in tests/demo.sh (`make demo`), inputs named relative to the demo's
/// directory (report runs there: the page's footer names them so, the same on every run).
fn demo_args() -> Vec<String> {
    [
        "--vms",
        "selected.jsonl",
        "--inventory",
        "inventory.jsonl",
        "--capacity",
        "capacity.jsonl",
        "--addresses",
        "addresses.jsonl",
        "--preflight",
        "preflight.jsonl",
        "--events",
        "events.jsonl",
        "--window",
        "22:00-06:00",
        "--time-zone",
        "UTC",
        "--title",
        "liftkit demo lab",
    ]
    .map(String::from)
    .to_vec()
}

/// Runs report in the demo's directory.
fn report_in_demo(args: &[String]) -> std::process::Output {
    Command::new(REPORT)
        .args(args)
        .current_dir(demo()._dir.path())
        .env_remove("RUST_LOG")
        .output()
        .unwrap()
}

/// The demo's report, as `make demo` makes it, once.
fn demo_report() -> &'static (String, PathBuf) {
    static REPORT_HTML: OnceLock<(String, PathBuf)> = OnceLock::new();
    REPORT_HTML.get_or_init(|| {
        let out = demo()._dir.path().join("report.html");
        let mut args = demo_args();
        args.extend(["-o".into(), "report.html".into()]);
        let o = report_in_demo(&args);
        assert_eq!(code(&o), 0, "report: {}", stderr(&o));
        (std::fs::read_to_string(&out).unwrap(), out)
    })
}

fn select<'a>(doc: &'a Html, css: &str) -> Vec<ElementRef<'a>> {
    doc.select(&Selector::parse(css).unwrap()).collect()
}

fn count(doc: &Html, css: &str) -> usize {
    select(doc, css).len()
}

fn text(e: &ElementRef) -> String {
    e.text().collect::<String>()
}

#[test]
fn every_section_of_the_demo_report_is_there_with_its_figures() {
    let mut args = demo_args();
    args.extend(["--verify".into(), path(&demo().verify).into()]);
    let o = report_in_demo(&args);
    assert_eq!(code(&o), 0, "report: {}", stderr(&o));
    let doc = Html::parse_document(&String::from_utf8(o.stdout).unwrap());
    for id in [
        "summary",
        "capacity",
        "addresses",
        "preflight",
        "schedule",
        "verification",
    ] {
        assert_eq!(
            count(&doc, &format!("section#{id} > h2")),
            1,
            "section {id}"
        );
        assert_eq!(
            count(&doc, &format!("nav a[href='#{id}']")),
            1,
            "nav link to {id}"
        );
    }
    let d = demo();
    let selected = pipeline::read_lines(&d.selected);
    let inventory = pipeline::read_lines(&d.inventory);
    let findings = pipeline::read_lines(&d.preflight);
    let summary = &select(&doc, "section#summary .figure b")
        .iter()
        .map(text)
        .collect::<Vec<_>>();
    assert_eq!(summary[0], selected.len().to_string(), "VMs to move");
    assert_eq!(
        summary[1],
        inventory.len().to_string(),
        "VMs in the inventory"
    );
    let namespaces: BTreeSet<&str> = selected
        .iter()
        .map(|v| v["target_namespace"].as_str().unwrap())
        .collect();
    assert_eq!(
        summary[3],
        namespaces.len().to_string(),
        "target namespaces"
    );
    let owners: BTreeSet<&str> = selected
        .iter()
        .flat_map(|v| v["owners"].as_array().unwrap())
        .map(|o| o["principal"].as_str().unwrap())
        .collect();
    assert_eq!(summary[2], owners.len().to_string(), "owners");
    // Left out: every inventory VM not selected, and every VM plan-gen left out.
    let blocked: BTreeSet<&str> = findings
        .iter()
        .filter(|f| f["left_out"] == true)
        .map(|f| f["vm_name"].as_str().unwrap())
        .collect();
    let reasons: Vec<Vec<String>> = select(&doc, "section#summary table.reasons tr")
        .iter()
        .skip(1)
        .map(|tr| tr.child_elements().map(|td| text(&td)).collect())
        .collect();
    let not_selected = (inventory.len() - selected.len()).to_string();
    assert_eq!(
        reasons[0][..2],
        [
            "not selected (in the inventory, not in --vms)".to_string(),
            not_selected
        ]
    );
    assert_eq!(
        reasons[1][..2],
        [
            "blocked by the preflight (Critical finding)".to_string(),
            blocked.len().to_string()
        ]
    );
    for vm in &blocked {
        assert!(
            reasons[1][2].contains(vm),
            "{vm} not among {}",
            reasons[1][2]
        );
    }
    let left_out = inventory.len() - selected.len() + blocked.len();
    assert!(summary.contains(&left_out.to_string()), "{summary:?}");
    assert!(!blocked.is_empty());
    // The capacity-calc totals row's class, with the --available it was given.
    let classes = select(&doc, "section#capacity table.classes td")
        .iter()
        .map(text)
        .collect::<Vec<_>>();
    assert_eq!(classes[0], "trident-nfs");
    assert_eq!(classes[3], "40 TiB");
    // The tlv-apps /28: 14 usable, 1 reserved, 13 free; its row is marked.
    let short = select(&doc, "section#addresses table.subnets tr.bad");
    assert_eq!(short.len(), 1);
    assert!(
        text(&short[0]).contains("multus:vm-networks/tlv-apps"),
        "{}",
        text(&short[0])
    );
    // Verification: the first simulated VM failed its network check.
    assert_eq!(count(&doc, "section#verification table.failed tr.bad"), 1);
}

#[test]
fn each_chart_has_one_bar_or_row_per_item_of_its_input() {
    let doc = Html::parse_document(&demo_report().0);
    let d = demo();
    let events = pipeline::read_lines(&d.events);
    let plans: BTreeSet<&str> = events.iter().filter_map(|e| e["plan"].as_str()).collect();
    let started: BTreeSet<&str> = events
        .iter()
        .filter(|e| e["event"] == "started")
        .map(|e| e["plan"].as_str().unwrap())
        .collect();
    let vms_done = events
        .iter()
        .filter(|e| e["event"] == "vm-succeeded")
        .count();
    assert_eq!(count(&doc, "svg#chart-gantt g.row"), plans.len());
    assert_eq!(count(&doc, "svg#chart-gantt rect.bar.plan"), started.len());
    assert_eq!(count(&doc, "svg#chart-gantt line.vm"), vms_done);
    assert!(vms_done > 50, "{vms_done}");

    let capacity = pipeline::read_lines(&d.capacity);
    let groups = capacity.iter().filter(|r| r["total"] != true).count();
    assert_eq!(count(&doc, "svg#chart-capacity-groups g.row"), groups);
    assert_eq!(
        count(&doc, "svg#chart-capacity-groups rect.bar"),
        2 * groups,
        "steady and peak"
    );
    let total = capacity.iter().find(|r| r["total"] == true).unwrap();
    let classes = total["pvc_bytes"].as_object().unwrap().len();
    assert_eq!(count(&doc, "svg#chart-capacity-classes g.row"), classes);
    assert_eq!(
        count(&doc, "svg#chart-capacity-classes line.marker"),
        1,
        "--available"
    );

    let addresses = pipeline::read_lines(&d.addresses);
    let subnets: Vec<&Value> = addresses
        .iter()
        .filter(|r| r["report"] == "target" && r["subnet"].is_string())
        .collect();
    let short = subnets
        .iter()
        .filter(|r| r["shortfall"].as_u64() > Some(0))
        .count();
    assert_eq!(count(&doc, "svg#chart-addresses g.row"), subnets.len());
    assert_eq!(count(&doc, "svg#chart-addresses rect.bar.shortfall"), short);
    assert_eq!(short, 1);

    let concerns: BTreeSet<String> = pipeline::read_lines(&d.preflight)
        .iter()
        .map(|f| f["concern_id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(count(&doc, "svg#chart-preflight g.row"), concerns.len());
    assert_eq!(count(&doc, "svg#chart-preflight rect.bar"), concerns.len());

    // plotters' two line charts, each with its one line (in report's line colour).
    assert_eq!(
        count(&doc, "svg#chart-inflight polyline[stroke='#1F5EA8']"),
        1
    );
    assert_eq!(
        count(&doc, "svg#chart-throughput polyline[stroke='#1F5EA8']"),
        1
    );
}

#[test]
fn the_window_is_shaded_where_it_is_open() {
    // The simulation starts 2026-11-27 22:00 UTC and ends before 06:00: inside one opening of
    // 22:00-06:00, so one shaded span from the plot's left edge to its right edge.
    let doc = Html::parse_document(&demo_report().0);
    let windows = select(&doc, "svg#chart-gantt rect.window");
    assert_eq!(windows.len(), 1);
    let attr = |name: &str| {
        windows[0]
            .value()
            .attr(name)
            .unwrap()
            .parse::<f64>()
            .unwrap()
    };
    assert_eq!(attr("x"), 220.0);
    assert_eq!(attr("x") + attr("width"), 880.0);
    // Read at 05:00-06:00 instead: closed during the whole run, nothing shaded.
    let d = demo();
    let o = run_with_env(
        REPORT,
        &[
            "--events",
            path(&d.events),
            "--window",
            "05:00-06:00",
            "--only",
            "schedule",
        ],
        b"",
        &[("TZ", "UTC")],
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let svg = Html::parse_document(&String::from_utf8(o.stdout).unwrap());
    assert_eq!(count(&svg, "rect.window"), 0);
}

#[test]
fn only_schedule_writes_the_gantt_alone() {
    let d = demo();
    let o = run_with_env(
        REPORT,
        &["--events", path(&d.events), "--only", "schedule"],
        b"",
        &[("TZ", "UTC")],
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let text = String::from_utf8(o.stdout).unwrap();
    assert!(
        text.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<svg "),
        "{}",
        &text[..80]
    );
    assert!(!text.contains("<html"), "an SVG document, not a page");
    let plans: BTreeSet<String> = pipeline::read_lines(&d.events)
        .iter()
        .filter_map(|e| e["plan"].as_str().map(str::to_string))
        .collect();
    let svg = Html::parse_document(&text);
    assert_eq!(count(&svg, "svg#chart-gantt g.row"), plans.len());
}

/// A name an engine may hold, in every input that carries names.
const EVIL: &str = "<script>alert(1)</script>";

#[test]
fn untrusted_names_appear_as_text_never_as_markup() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, lines: &[Value]| {
        let p = dir.path().join(name);
        let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
        std::fs::write(&p, text).unwrap();
        p
    };
    let vms = write(
        "vms.jsonl",
        &[json!({"id": "1", "name": EVIL, "target_namespace": EVIL,
        "owners": [{"principal": EVIL}], "disks": [{"disk_id": "d1", "provisioned_bytes": 1024}]})],
    );
    let preflight = write(
        "preflight.jsonl",
        &[json!({"vm_name": EVIL, "target_namespace": EVIL,
        "concern_id": EVIL, "category": "Critical", "label": EVIL, "assessment": EVIL, "left_out": true})],
    );
    let capacity = write(
        "capacity.jsonl",
        &[json!({"namespace": EVIL, "pvc_bytes": {EVIL: 10},
        "peak_pvc_bytes": {EVIL: 20}})],
    );
    let addresses = write(
        "addresses.jsonl",
        &[json!({"report": "target", "target": EVIL,
        "subnet": EVIL, "size": 14, "reserved": 1, "needed": 20, "free": 13, "shortfall": 7})],
    );
    let events = write(
        "events.jsonl",
        &[
            json!({"time": "2026-11-27T22:00:00Z", "event": "started", "plan": EVIL, "namespace": EVIL, "vm_count": 1, "total_bytes": 1024}),
            json!({"time": "2026-11-27T22:10:00Z", "event": "vm-failed", "plan": EVIL, "namespace": EVIL, "vm_id": "1", "vm_name": EVIL, "error": EVIL}),
        ],
    );
    let verify = write(
        "verify.jsonl",
        &[json!({"vm": EVIL, "check": EVIL, "ok": false, "message": EVIL})],
    );
    let out = dir.path().join("r.html");
    let o = run(
        REPORT,
        &[
            "--vms",
            path(&vms),
            "--preflight",
            path(&preflight),
            "--capacity",
            path(&capacity),
            "--addresses",
            path(&addresses),
            "--events",
            path(&events),
            "--verify",
            path(&verify),
            "--title",
            EVIL,
            "-o",
            path(&out),
        ],
        b"",
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let html = std::fs::read_to_string(&out).unwrap();
    assert!(!html.contains("<script"), "raw markup in the page");
    let doc = Html::parse_document(&html);
    assert_eq!(count(&doc, "script"), 0);
    // The name shows as text in every section, and in the title.
    for id in [
        "summary",
        "capacity",
        "addresses",
        "preflight",
        "schedule",
        "verification",
    ] {
        let section = select(&doc, &format!("section#{id}"));
        assert!(
            text(&section[0]).contains(EVIL),
            "{id}: {}",
            text(&section[0])
        );
    }
    assert_eq!(text(&select(&doc, "head title")[0]), EVIL);
    // A hover title inside a chart keeps it as text too.
    let titles: Vec<String> = select(&doc, "svg#chart-gantt rect.bar title")
        .iter()
        .map(text)
        .collect();
    assert!(titles[0].contains(EVIL), "{titles:?}");
}

#[test]
fn a_live_run_shows_what_remains() {
    // Two plans of 3 and 2 VMs (300 and 200 GiB): the first finished, the second has one VM
    // done (100 GiB) and one at 30 GiB. Left: 1 plan, 1 VM, 200 - 100 - 30 GiB.
    let gib: u64 = 1 << 30;
    let dir = tempfile::tempdir().unwrap();
    let e = |t: &str, event: &str, plan: &str, extra: Value| {
        let mut v = json!({"time": t, "event": event, "plan": plan, "namespace": "mig"});
        v.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        format!("{v}\n")
    };
    let mut lines = String::new();
    lines += &e(
        "2026-11-27T22:00:00Z",
        "started",
        "a",
        json!({"vm_count": 3, "total_bytes": 300 * gib, "inflight_bytes": 300 * gib}),
    );
    lines += &e(
        "2026-11-27T22:00:00Z",
        "started",
        "b",
        json!({"vm_count": 2, "total_bytes": 200 * gib, "inflight_bytes": 500 * gib}),
    );
    for (i, t) in ["22:10", "22:20", "22:30"].iter().enumerate() {
        lines += &e(
            &format!("2026-11-27T{t}:00Z"),
            "vm-succeeded",
            "a",
            json!({"vm_id": format!("a{i}"), "vm_name": format!("a{i}"), "bytes_done": 100 * gib, "bytes_total": 100 * gib}),
        );
    }
    lines += &e(
        "2026-11-27T22:31:00Z",
        "plan-finished",
        "a",
        json!({"outcome": "Succeeded", "inflight_bytes": 200 * gib}),
    );
    lines += &e(
        "2026-11-27T22:35:00Z",
        "vm-succeeded",
        "b",
        json!({"vm_id": "b0", "vm_name": "b0", "bytes_done": 100 * gib, "bytes_total": 100 * gib}),
    );
    lines += &e(
        "2026-11-27T22:40:00Z",
        "vm-progress",
        "b",
        json!({"vm_id": "b1", "vm_name": "b1", "bytes_done": 30 * gib, "bytes_total": 100 * gib}),
    );
    let events = dir.path().join("events.jsonl");
    std::fs::write(&events, lines).unwrap();
    let o = run_with_env(REPORT, &["--events", path(&events)], b"", &[("TZ", "UTC")]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let doc = Html::parse_document(&String::from_utf8(o.stdout).unwrap());
    let figures: Vec<String> = select(&doc, "section#schedule .remaining .figure")
        .iter()
        .map(text)
        .collect();
    assert_eq!(
        figures,
        [
            "1plans to finish (1 running, 0 waiting)",
            "1VMs to go",
            "70 GiBleft to copy"
        ]
    );
    assert_eq!(count(&doc, "svg#chart-gantt rect.bar.plan.succeeded"), 1);
    assert_eq!(count(&doc, "svg#chart-gantt rect.bar.plan.running"), 1);
    assert!(text(&select(&doc, "section#schedule h2")[0]).contains("live run"));
}

#[test]
fn bad_input_fails_with_one_line_and_keeps_the_last_good_file() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("report.html");
    std::fs::write(&good, "good\n").unwrap();
    let bad = dir.path().join("events.jsonl");
    std::fs::write(
        &bad,
        "{\"time\":\"2026-11-27T22:00:00Z\",\"event\":\"started\"}\nnot json\n",
    )
    .unwrap();
    let o = run(REPORT, &["--events", path(&bad), "-o", path(&good)], b"");
    assert_fails(
        &o,
        65,
        &format!("report: {}:2: not valid JSON", bad.display()),
    );
    assert_eq!(std::fs::read_to_string(&good).unwrap(), "good\n");
    let o = run(REPORT, &["--events", "/nonexistent/events.jsonl"], b"");
    assert_fails(&o, 66, "report: /nonexistent/events.jsonl: ");
    let o = run(REPORT, &[], b"");
    assert_fails(&o, 2, "report: nothing to report");
    let o = run(REPORT, &["--vms", path(&bad), "--only", "schedule"], b"");
    assert_eq!(code(&o), 65, "{}", stderr(&o));
    let empty = dir.path().join("empty.jsonl");
    std::fs::write(&empty, "").unwrap();
    let o = run(REPORT, &["--vms", path(&empty), "--only", "schedule"], b"");
    assert_fails(&o, 2, "report: --only schedule: no chart to draw");
    let o = run(REPORT, &["--vms", path(&empty), "--available", "x"], b"");
    assert_fails(&o, 2, "report: --available \"x\": expected CLASS=SIZE");
}

#[test]
fn the_page_loads_nothing_from_elsewhere() {
    let doc = Html::parse_document(&demo_report().0);
    assert_eq!(count(&doc, "script"), 0);
    for e in select(&doc, "[src], [href], link, iframe, object, embed, img") {
        let href = e
            .value()
            .attr("href")
            .or(e.value().attr("src"))
            .unwrap_or("");
        assert!(href.starts_with('#'), "{:?} points elsewhere", e.value());
    }
    assert!(!demo_report().0.contains("@import") && !demo_report().0.contains("url("));
}

// ---- the browser -------------------------------------------------------------------------------

/// Debian's Chromium (the Makefile installs it for the tests), found on PATH as a shell would.
fn chromium() -> std::path::PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path) {
        for name in ["chromium", "chromium-browser"] {
            let candidate = dir.join(name);
            if candidate.is_file() {
                return candidate;
            }
        }
    }
    panic!("Chromium not found on PATH: `make deps` installs Debian's chromium package");
}

/// Opens `page` in headless Chromium, screenshots it to `png`, and returns its stderr (logging
/// on, so the page's console messages are there).
fn screenshot(page: &Path, png: &Path, size: (u32, u32)) -> String {
    let profile = tempfile::tempdir().unwrap();
    let out = Command::new("timeout")
        .arg("120")
        .arg(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--no-first-run",
            "--disable-extensions",
            "--enable-logging=stderr",
            "--v=0",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(format!("--window-size={},{}", size.0, size.1))
        .arg(format!("--screenshot={}", png.display()))
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("run chromium");
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "chromium: {err}");
    assert!(png.exists(), "no screenshot: {err}");
    err
}

/// The page's console messages in Chromium's log (`...:CONSOLE(line)] "message", source: ...`).
fn console_messages(log: &str) -> Vec<&str> {
    log.lines().filter(|l| l.contains(":CONSOLE")).collect()
}

/// A decoded screenshot: width, height, samples per pixel, 8-bit samples.
struct Image {
    width: u32,
    height: u32,
    channels: usize,
    data: Vec<u8>,
}

fn decode(png: &Path) -> Image {
    let file = std::io::BufReader::new(std::fs::File::open(png).unwrap());
    let mut reader = png::Decoder::new(file).read_info().unwrap();
    let mut data = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut data).unwrap();
    assert_eq!(info.bit_depth, png::BitDepth::Eight);
    data.truncate(info.buffer_size());
    Image {
        width: info.width,
        height: info.height,
        channels: info.color_type.samples(),
        data,
    }
}

fn is_white(p: &[u8]) -> bool {
    p.iter().take(3).all(|v| *v >= 240)
}

/// Share of pixels that are not (near) white, and whether any is strongly coloured.
fn ink(image: &Image) -> (f64, bool) {
    let (mut inked, mut coloured) = (0usize, false);
    let pixels = image.data.chunks(image.channels);
    let total = pixels.len();
    for p in pixels {
        inked += usize::from(!is_white(p));
        let (r, g, b) = (p[0], p[1 % image.channels], p[2 % image.channels]);
        coloured |= r.abs_diff(g) > 60 || g.abs_diff(b) > 60;
    }
    (inked as f64 / total as f64, coloured)
}

/// The image without the white rows below the page's end, as a PNG at `to`.
fn crop_to_page(image: &Image, to: &Path) {
    let row = image.width as usize * image.channels;
    let last = (0..image.height as usize)
        .rev()
        .find(|y| {
            !image.data[y * row..(y + 1) * row]
                .chunks(image.channels)
                .all(is_white)
        })
        .unwrap_or(0);
    let height = (last + 16).min(image.height as usize);
    let file = std::io::BufWriter::new(std::fs::File::create(to).unwrap());
    let mut encoder = png::Encoder::new(file, image.width, height as u32);
    encoder.set_color(match image.channels {
        4 => png::ColorType::Rgba,
        _ => png::ColorType::Rgb,
    });
    encoder.set_depth(png::BitDepth::Eight);
    encoder.set_compression(png::Compression::High);
    let mut writer = encoder.write_header().unwrap();
    writer
        .write_image_data(&image.data[..height * row])
        .unwrap();
}

#[test]
fn chromium_renders_the_demo_report_without_console_errors() {
    let (_, page) = demo_report();
    let dir = tempfile::tempdir().unwrap();
    let png = dir.path().join("report.png");
    // Tall enough for the whole page: the white below its end is cut off.
    let log = screenshot(page, &png, (1000, 9000));
    assert_eq!(console_messages(&log), Vec::<&str>::new(), "console: {log}");
    let full = decode(&png);
    let page_png = dir.path().join("page.png");
    crop_to_page(&full, &page_png);
    let image = decode(&page_png);
    assert!(
        image.height < full.height,
        "the page is taller than the window: {}",
        image.height
    );
    let (share, coloured) = ink(&image);
    assert!(
        share > 0.05,
        "the screenshot is blank: {:.1}% ink",
        share * 100.0
    );
    assert!(coloured, "no coloured pixel: the charts did not draw");
    // The README shows this screenshot; LIFTKIT_BLESS=1 writes it.
    if std::env::var_os("LIFTKIT_BLESS").is_some() {
        let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs");
        std::fs::create_dir_all(&docs).unwrap();
        std::fs::copy(&page_png, docs.join("report.png")).unwrap();
    }
}

#[test]
fn the_demo_report_prints() {
    // Chromium's print to PDF (A4/Letter, the print stylesheet): several pages, no console error.
    let (_, page) = demo_report();
    let dir = tempfile::tempdir().unwrap();
    let pdf = dir.path().join("report.pdf");
    let profile = tempfile::tempdir().unwrap();
    let out = Command::new("timeout")
        .arg("120")
        .arg(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--no-pdf-header-footer",
            "--enable-logging=stderr",
            "--v=0",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(format!("--print-to-pdf={}", pdf.display()))
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("run chromium");
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "chromium: {log}");
    assert_eq!(console_messages(&log), Vec::<&str>::new(), "console: {log}");
    let bytes = std::fs::read(&pdf).unwrap();
    assert!(bytes.starts_with(b"%PDF-"), "not a PDF");
    let text = String::from_utf8_lossy(&bytes);
    let pages = text.matches("/Type /Page").count() - text.matches("/Type /Pages").count();
    assert!(pages >= 3, "{pages} page(s)");
}

#[test]
fn the_console_check_sees_a_page_that_fails() {
    // The control for the test above: a page whose script throws is caught by the same check.
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("broken.html");
    std::fs::write(
        &page,
        "<!DOCTYPE html><p>x</p><script>throw new Error('boom-report-test')</script>",
    )
    .unwrap();
    let log = screenshot(&page, &dir.path().join("broken.png"), (400, 300));
    let messages = console_messages(&log);
    assert!(
        messages.iter().any(|m| m.contains("boom-report-test")),
        "not seen: {log}"
    );
}

#[test]
fn the_readme_shows_the_tests_screenshot() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let png = root.join("docs/report.png");
    assert!(
        png.exists(),
        "docs/report.png missing: LIFTKIT_BLESS=1 cargo test --test report writes it"
    );
    let (share, coloured) = ink(&decode(&png));
    assert!(share > 0.05 && coloured, "docs/report.png looks blank");
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    assert!(
        readme.contains("<img src=\"docs/report.png\""),
        "README.md does not show docs/report.png"
    );
}
