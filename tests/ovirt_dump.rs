//! ovirt-dump against the engine simulator, over real HTTP and TLS: the export checked field by
//! field against the world file (parsed here as plain JSON, never through tool code), the request
//! budget at scale, and every documented failure with its exit code.

mod support;

use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use support::{Sim, demo_world_path, load_world};

const DUMP: &str = env!("CARGO_BIN_EXE_ovirt-dump");

/// ovirt-dump against `sim`, with its credentials and CA, plus `extra` arguments.
fn dump_cmd(sim: &Sim, extra: &[&str]) -> Command {
    let mut cmd = Command::new(DUMP);
    cmd.args(["--url", &sim.url, "--user", &sim.user]);
    if let Some(ca) = &sim.ca_file {
        cmd.arg("--ca-file").arg(ca);
    }
    cmd.args(extra)
        .env("OVIRT_PASSWORD", &sim.password)
        .env_remove("RUST_LOG")
        .env("NO_COLOR", "1");
    cmd
}

fn run(mut cmd: Command) -> Output {
    cmd.stdin(Stdio::null()).output().expect("run ovirt-dump")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn records(out: &Output) -> Vec<Value> {
    assert!(
        out.status.success(),
        "ovirt-dump failed: {:?}\n{}",
        out.status,
        stderr(out)
    );
    String::from_utf8(out.stdout.clone())
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect()
}

/// A failed run: the documented exit code and exactly one line on stderr, starting with the tool.
fn assert_fails(out: &Output, code: i32) -> String {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(code), "stderr: {err}");
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 1, "one line on stderr, got: {err}");
    assert!(lines[0].starts_with("ovirt-dump: "), "{err}");
    lines[0].to_string()
}

/// RFC 3339 to epoch milliseconds, so times compare as instants whatever their offset.
fn instant_ms(text: &str) -> i64 {
    let bad = || panic!("not RFC 3339: {text}");
    let b = text.as_bytes();
    if b.len() < 20 {
        bad();
    }
    let num = |s: &str| -> i64 { s.parse().unwrap_or_else(|_| bad()) };
    let (y, mo, d) = (num(&text[0..4]), num(&text[5..7]), num(&text[8..10]));
    let (h, mi, s) = (num(&text[11..13]), num(&text[14..16]), num(&text[17..19]));
    let mut rest = &text[19..];
    let mut millis = 0i64;
    if let Some(frac) = rest.strip_prefix('.') {
        let digits: String = frac.chars().take_while(|c| c.is_ascii_digit()).collect();
        let padded = format!("{digits:0<3}");
        millis = num(&padded[..3]);
        rest = &frac[digits.len()..];
    }
    let offset_min = match rest {
        "Z" | "z" => 0,
        _ => {
            let sign = if rest.starts_with('-') { -1 } else { 1 };
            sign * (num(&rest[1..3]) * 60 + num(&rest[4..6]))
        }
    };
    // Days from civil (Howard Hinnant's algorithm).
    let y = if mo <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (mo + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146097 + doe - 719468;
    ((days * 86400 + h * 3600 + mi * 60 + s - offset_min * 60) * 1000) + millis
}

fn by_id(items: &Value) -> HashMap<&str, &Value> {
    items
        .as_array()
        .map(|a| a.iter().map(|i| (i["id"].as_str().unwrap(), i)).collect())
        .unwrap_or_default()
}

/// The world's objects, indexed by id.
struct World<'a> {
    data_centers: HashMap<&'a str, &'a Value>,
    clusters: HashMap<&'a str, &'a Value>,
    hosts: HashMap<&'a str, &'a Value>,
    networks: HashMap<&'a str, &'a Value>,
    profiles: HashMap<&'a str, &'a Value>,
    storage_domains: HashMap<&'a str, &'a Value>,
    disks: HashMap<&'a str, &'a Value>,
    users: HashMap<&'a str, &'a Value>,
    groups: HashMap<&'a str, &'a Value>,
    tags: HashMap<&'a str, &'a Value>,
    permissions: &'a [Value],
}

impl<'a> World<'a> {
    fn new(world: &'a Value) -> Self {
        World {
            data_centers: by_id(&world["data_centers"]),
            clusters: by_id(&world["clusters"]),
            hosts: by_id(&world["hosts"]),
            networks: by_id(&world["networks"]),
            profiles: by_id(&world["vnic_profiles"]),
            storage_domains: by_id(&world["storage_domains"]),
            disks: by_id(&world["disks"]),
            users: by_id(&world["users"]),
            groups: by_id(&world["groups"]),
            tags: by_id(&world["tags"]),
            permissions: world["permissions"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or(&[]),
        }
    }
}

/// Checks one field when the world has it, and its absence when the world has not.
fn same(what: &str, record: &Value, world: &Value) {
    if world.is_null() {
        assert!(
            record.is_null(),
            "{what}: the world has none, the record has {record}"
        );
    } else {
        assert_eq!(record, world, "{what}");
    }
}

/// Checks one field when the world sets it (the engine reports a default otherwise).
fn when_set(what: &str, record: &Value, world: &Value) {
    if !world.is_null() {
        assert_eq!(record, world, "{what}");
    }
}

fn check_vm(w: &World, vm: &Value, r: &Value) {
    let name = vm["name"].as_str().unwrap();
    let at = |field: &str| format!("{name}: {field}");
    assert_eq!(r["schema"], 1);
    assert_eq!(r["name"], vm["name"]);
    for field in ["status", "type", "fqdn", "os_type", "stop_reason"] {
        same(&at(field), &r[field], &vm[field]);
    }
    // The engine sends "" for no description or comment; the record leaves it out.
    for field in ["description", "comment"] {
        let world = if vm[field] == "" {
            &Value::Null
        } else {
            &vm[field]
        };
        same(&at(field), &r[field], world);
    }
    assert_eq!(r["memory_bytes"], vm["memory"], "{}", at("memory"));
    for (field, record_field) in [
        ("guaranteed", "memory_guaranteed_bytes"),
        ("max", "memory_max_bytes"),
    ] {
        when_set(&at(field), &r[record_field], &vm["memory_policy"][field]);
    }
    for field in ["sockets", "cores", "threads"] {
        assert_eq!(r["cpu"][field], vm["cpu"][field], "{}", at(field));
    }
    when_set(&at("bios_type"), &r["bios_type"], &vm["bios_type"]);
    when_set(
        &at("high_availability"),
        &r["high_availability"],
        &vm["high_availability"]["enabled"],
    );
    when_set(&at("usb"), &r["usb_enabled"], &vm["usb"]);
    when_set(&at("display_type"), &r["display_type"], &vm["display_type"]);
    when_set(&at("io_threads"), &r["io_threads"], &vm["io_threads"]);
    when_set(
        &at("custom_properties"),
        &r["custom_properties"],
        &vm["custom_properties"],
    );
    when_set(
        &at("cpu_pinning_policy"),
        &r["cpu"]["pinning_policy"],
        &vm["cpu_pinning_policy"],
    );
    when_set(
        &at("custom_cpu_model"),
        &r["cpu"]["custom_model"],
        &vm["custom_cpu_model"],
    );
    when_set(&at("vcpu_pins"), &r["cpu"]["pinning"], &vm["vcpu_pins"]);
    when_set(
        &at("placement_policy"),
        &r["placement_policy"]["affinity"],
        &vm["placement_policy"]["affinity"],
    );
    when_set(
        &at("has_illegal_images"),
        &r["has_illegal_images"],
        &vm["has_illegal_images"],
    );

    // Placement, names resolved.
    let cluster = w.clusters[vm["cluster"].as_str().unwrap()];
    assert_eq!(r["cluster"]["id"], cluster["id"], "{}", at("cluster"));
    assert_eq!(r["cluster"]["name"], cluster["name"], "{}", at("cluster"));
    let dc = w.data_centers[cluster["data_center"].as_str().unwrap()];
    assert_eq!(r["data_center"]["id"], dc["id"], "{}", at("data_center"));
    assert_eq!(
        r["data_center"]["name"],
        dc["name"],
        "{}",
        at("data_center")
    );
    match vm["host"].as_str() {
        Some(host) => {
            assert_eq!(r["host"]["id"], host, "{}", at("host"));
            assert_eq!(r["host"]["name"], w.hosts[host]["name"], "{}", at("host"));
        }
        None => assert!(
            r["host"].is_null(),
            "{}: no host in the world, {} in the record",
            name,
            r["host"]
        ),
    }
    if let Some(template) = vm["template"].as_str() {
        assert_eq!(r["template"]["name"], template, "{}", at("template"));
    }
    let tags: Vec<&Value> = vm["tags"]
        .as_array()
        .map(|ids| {
            ids.iter()
                .map(|id| &w.tags[id.as_str().unwrap()]["name"])
                .collect()
        })
        .unwrap_or_default();
    let record_tags: Vec<&Value> = r["tags"]
        .as_array()
        .map(|t| t.iter().collect())
        .unwrap_or_default();
    assert_eq!(record_tags, tags, "{}", at("tags"));

    // Times: the same instants, in RFC 3339.
    for field in ["creation_time", "start_time", "stop_time"] {
        match vm[field].as_str() {
            Some(t) => {
                let got = r[field]
                    .as_str()
                    .unwrap_or_else(|| panic!("{}: missing", at(field)));
                assert_eq!(
                    instant_ms(got),
                    instant_ms(t),
                    "{}: {got} vs {t}",
                    at(field)
                );
            }
            None => assert!(r[field].is_null(), "{}: invented {}", at(field), r[field]),
        }
    }

    check_disks(w, vm, r, name);
    check_nics(w, vm, r, name);
    check_permissions(w, vm, r, name, cluster, dc);

    if let Some(stats) = vm.get("statistics") {
        let s = &r["statistics"];
        assert_eq!(
            s["elapsed_time_seconds"],
            stats["elapsed_time"],
            "{}",
            at("elapsed_time")
        );
        assert_eq!(
            s["memory_installed_bytes"],
            stats["memory_installed"],
            "{}",
            at("memory_installed")
        );
        assert_eq!(
            s["memory_used_bytes"],
            stats["memory_used"],
            "{}",
            at("memory_used")
        );
        // The engine rounds decimals to two significant digits.
        let (got, want) = (
            s["cpu_total_percent"].as_f64().unwrap(),
            stats["cpu_total"].as_f64().unwrap(),
        );
        assert!(
            (got - want).abs() <= want.abs() * 0.05 + 0.1,
            "{}: {got} vs {want}",
            at("cpu_total")
        );
    }
    if let Some(watchdogs) = vm.get("watchdogs") {
        assert_eq!(&r["watchdogs"], watchdogs, "{}", at("watchdogs"));
    }
    if let Some(devices) = vm.get("host_devices") {
        assert_eq!(&r["host_devices"], devices, "{}", at("host_devices"));
    }
    if let Some(snapshots) = vm["snapshots"].as_array() {
        let got = r["snapshots"]
            .as_array()
            .unwrap_or_else(|| panic!("{}: no snapshots", at("snapshots")));
        assert_eq!(got.len(), snapshots.len(), "{}", at("snapshots"));
        for (g, s) in got.iter().zip(snapshots) {
            assert_eq!(g["id"], s["id"]);
            assert_eq!(g["type"], s["type"]);
            assert_eq!(g["persist_memory"], s["persist_memorystate"]);
            assert_eq!(
                instant_ms(g["date"].as_str().unwrap()),
                instant_ms(s["date"].as_str().unwrap())
            );
        }
    }
}

fn check_disks(w: &World, vm: &Value, r: &Value, name: &str) {
    let attachments = vm["disk_attachments"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let disks = r["disks"]
        .as_array()
        .unwrap_or_else(|| panic!("{name}: no disks"));
    assert_eq!(disks.len(), attachments.len(), "{name}: disk count");
    for a in &attachments {
        let got = disks
            .iter()
            .find(|d| d["attachment_id"] == a["id"])
            .unwrap_or_else(|| panic!("{name}: attachment {} missing", a["id"]));
        let what = format!("{name}: disk {}", a["id"]);
        let disk = w.disks[a["disk"].as_str().unwrap()];
        assert_eq!(got["disk_id"], disk["id"], "{what}");
        for field in [
            "interface",
            "bootable",
            "active",
            "read_only",
            "uses_scsi_reservation",
            "logical_name",
        ] {
            same(&format!("{what}: {field}"), &got[field], &a[field]);
        }
        for field in [
            "alias",
            "status",
            "format",
            "sparse",
            "shareable",
            "storage_type",
            "content_type",
        ] {
            same(&format!("{what}: {field}"), &got[field], &disk[field]);
        }
        // The engine reports a LUN disk's provisioned size as the size of its LUN.
        let provisioned = if disk["storage_type"] == "lun" {
            &disk["lun_size"]
        } else {
            &disk["provisioned_size"]
        };
        assert_eq!(
            &got["provisioned_bytes"], provisioned,
            "{what}: provisioned"
        );
        assert_eq!(got["actual_bytes"], disk["actual_size"], "{what}: actual");
        same(
            &format!("{what}: lun size"),
            &got["lun_size_bytes"],
            &disk["lun_size"],
        );
        match disk["storage_domain"].as_str() {
            Some(sd) => {
                assert_eq!(got["storage_domain"]["id"], sd, "{what}: storage domain");
                assert_eq!(
                    got["storage_domain"]["name"], w.storage_domains[sd]["name"],
                    "{what}: storage domain"
                );
            }
            None => assert!(
                got["storage_domain"].is_null(),
                "{what}: invented storage domain"
            ),
        }
    }
}

fn check_nics(w: &World, vm: &Value, r: &Value, name: &str) {
    let world_nics = vm["nics"].as_array().cloned().unwrap_or_default();
    let nics = r["nics"]
        .as_array()
        .unwrap_or_else(|| panic!("{name}: no nics"));
    assert_eq!(nics.len(), world_nics.len(), "{name}: nic count");
    for n in &world_nics {
        let got = nics
            .iter()
            .find(|g| g["id"] == n["id"])
            .unwrap_or_else(|| panic!("{name}: nic {} missing", n["id"]));
        let what = format!("{name}: nic {}", n["name"]);
        for field in ["name", "mac", "interface", "plugged", "linked"] {
            same(&format!("{what}: {field}"), &got[field], &n[field]);
        }
        let ips = |version: &str| -> Vec<Value> {
            n["reported_ips"]
                .as_array()
                .map(|ips| {
                    ips.iter()
                        .filter(|ip| ip["version"] == version)
                        .map(|ip| ip["address"].clone())
                        .collect()
                })
                .unwrap_or_default()
        };
        assert_eq!(got["ipv4"], Value::Array(ips("v4")), "{what}: ipv4");
        assert_eq!(got["ipv6"], Value::Array(ips("v6")), "{what}: ipv6");
        match n["vnic_profile"].as_str() {
            None => {
                assert!(
                    got["vnic_profile"].is_null() && got["network"].is_null(),
                    "{what}: empty profile"
                )
            }
            Some(profile_id) => {
                let profile = w.profiles[profile_id];
                let p = &got["vnic_profile"];
                assert_eq!(p["id"], profile["id"], "{what}: profile");
                assert_eq!(p["name"], profile["name"], "{what}: profile");
                for field in ["pass_through", "port_mirroring", "qos", "custom_properties"] {
                    same(
                        &format!("{what}: profile {field}"),
                        &p[field],
                        &profile[field],
                    );
                }
                // The profile carries a ref only; the name is joined from GET /networkfilters.
                same(
                    &format!("{what}: profile network_filter"),
                    &p["network_filter"],
                    &profile["network_filter"],
                );
                let network = w.networks[profile["network"].as_str().unwrap()];
                let dc = w.data_centers[network["data_center"].as_str().unwrap()];
                let net = &got["network"];
                assert_eq!(net["id"], network["id"], "{what}: network");
                assert_eq!(net["name"], network["name"], "{what}: network");
                same(&format!("{what}: vlan"), &net["vlan"], &network["vlan"]);
                let path = format!(
                    "{}/{}",
                    dc["name"].as_str().unwrap(),
                    network["name"].as_str().unwrap()
                );
                assert_eq!(net["path"], path.as_str(), "{what}: network path");
                assert_eq!(
                    net["data_center"]["name"], dc["name"],
                    "{what}: network data center"
                );
            }
        }
    }
}

fn check_permissions(w: &World, vm: &Value, r: &Value, name: &str, cluster: &Value, dc: &Value) {
    // What the VM's permissions list must hold: its own and those it inherits.
    let mut expected: BTreeMap<&str, (&Value, Option<&str>)> = BTreeMap::new();
    for p in w.permissions {
        let object = &p["object"];
        let inherited = match object["type"].as_str().unwrap() {
            "vm" if object["id"] == vm["id"] => None,
            "cluster" if object["id"] == cluster["id"] => Some("cluster"),
            "data_center" if object["id"] == dc["id"] => Some("data_center"),
            "system" => Some("system"),
            _ => continue,
        };
        expected.insert(p["id"].as_str().unwrap(), (p, inherited));
    }
    let got = r["permissions"]
        .as_array()
        .unwrap_or_else(|| panic!("{name}: no permissions"));
    let got_ids: Vec<&str> = got.iter().map(|p| p["id"].as_str().unwrap()).collect();
    let want_ids: Vec<&str> = expected.keys().copied().collect();
    let mut sorted = got_ids.clone();
    sorted.sort();
    assert_eq!(sorted, want_ids, "{name}: permission ids");
    for g in got {
        let (p, inherited) = expected[g["id"].as_str().unwrap()];
        let what = format!("{name}: permission {}", p["id"]);
        assert_eq!(
            g["inherited_from"].as_str(),
            inherited,
            "{what}: inherited_from"
        );
        assert_eq!(g["role"]["name"], p["role"], "{what}: role");
        if let Some(user_id) = p["user"].as_str() {
            let user = w.users[user_id];
            for field in ["id", "principal", "user_name"] {
                assert_eq!(g["user"][field], user[field], "{what}: user {field}");
            }
            assert_eq!(g["user"]["domain"], user["domain"], "{what}: user domain");
            assert!(g["group"].is_null(), "{what}: user and group");
        }
        if let Some(group_id) = p["group"].as_str() {
            let group = w.groups[group_id];
            for field in ["id", "name", "domain"] {
                assert_eq!(g["group"][field], group[field], "{what}: group {field}");
            }
            same(
                &format!("{what}: group namespace"),
                &g["group"]["namespace"],
                &group["namespace"],
            );
        }
    }
}

fn world_sim(extra: &[&str]) -> Sim {
    let world = demo_world_path();
    let mut args = vec!["--tls", "--world", world.to_str().unwrap()];
    args.extend_from_slice(extra);
    Sim::start(&args)
}

#[test]
fn demo_world_is_exported_field_by_field() {
    let sim = world_sim(&[]);
    let world = load_world(&demo_world_path());
    let w = World::new(&world);
    let out = run(dump_cmd(&sim, &[]));
    let got = records(&out);
    let vms = world["vms"].as_array().unwrap();
    assert_eq!(got.len(), vms.len(), "every VM exported once");
    let by_id: HashMap<&str, &Value> = got.iter().map(|r| (r["id"].as_str().unwrap(), r)).collect();
    for vm in vms {
        let record = by_id
            .get(vm["id"].as_str().unwrap())
            .unwrap_or_else(|| panic!("{} missing", vm["name"]));
        check_vm(&w, vm, record);
    }
    // Sorted by name, as the engine pages them.
    let names: Vec<&str> = got.iter().map(|r| r["name"].as_str().unwrap()).collect();
    let mut sorted = names.clone();
    sorted.sort_by_key(|n| n.to_lowercase());
    assert_eq!(names, sorted);
    assert!(
        stderr(&out).is_empty(),
        "a clean run is quiet: {}",
        stderr(&out)
    );
}

/// The engine's count changes under the export (VMs created or removed meanwhile; the simulator
/// skews its summary): the export is still written, with every VM the pages held, and the run says
/// so with exit 1.
#[test]
fn a_vm_count_that_changes_during_the_export_is_reported_with_exit_1() {
    let sim = world_sim(&["--vm-total-skew", "2"]);
    let world = load_world(&demo_world_path());
    let vms = world["vms"].as_array().unwrap().len();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.jsonl");
    let out = run(dump_cmd(
        &sim,
        &["--page-size", "10", "-o", path.to_str().unwrap()],
    ));
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains(&format!(
            "the engine counts {} VMs now, {vms} were exported",
            vms + 2
        )),
        "{err}"
    );
    let text = std::fs::read_to_string(&path).unwrap();
    assert_eq!(text.lines().count(), vms);
}

#[test]
fn legacy_numeric_json_parses_the_same() {
    let sim = world_sim(&["--legacy-numbers"]);
    let world = load_world(&demo_world_path());
    let w = World::new(&world);
    let got = records(&run(dump_cmd(&sim, &[])));
    let by_id: HashMap<&str, &Value> = got.iter().map(|r| (r["id"].as_str().unwrap(), r)).collect();
    for vm in world["vms"].as_array().unwrap() {
        check_vm(&w, vm, by_id[vm["id"].as_str().unwrap()]);
    }
}

#[test]
fn a_thousand_vms_take_a_few_dozen_requests() {
    let sim = Sim::start(&["--tls", "--generate", "1000", "--seed", "1"]);
    let before = sim.requests()["total"].as_u64().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.jsonl");
    let out = run(dump_cmd(&sim, &["-o", path.to_str().unwrap()]));
    assert!(out.status.success(), "{}", stderr(&out));
    let requests = sim.requests()["total"].as_u64().unwrap() - before;
    let text = std::fs::read_to_string(&path).unwrap();
    let ids: std::collections::HashSet<String> = text
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["id"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(text.lines().count(), 1000);
    assert_eq!(ids.len(), 1000, "no VM twice");
    eprintln!("1000 VMs: {requests} HTTP requests");
    assert!(requests <= 40, "{requests} requests for 1000 VMs");
}

#[test]
fn bad_credentials_exit_77_with_one_line() {
    let sim = world_sim(&[]);
    let mut cmd = dump_cmd(&sim, &[]);
    cmd.env("OVIRT_PASSWORD", "wrong-password-123");
    let out = run(cmd);
    let line = assert_fails(&out, 77);
    assert_eq!(
        line,
        format!(
            "ovirt-dump: {}: login failed: bad user or password (HTTP 400 access_denied)",
            sim.url
        )
    );
    assert!(out.stdout.is_empty());
}

#[test]
fn unreachable_engine_exits_69() {
    // A port nobody listens on, held for the whole test: bound without listening (and without
    // SO_REUSEADDR), so connecting is refused and no other test can take the port meanwhile.
    let held = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    held.bind(&std::net::SocketAddr::from(([127, 0, 0, 1], 0)).into())
        .unwrap();
    let port = held.local_addr().unwrap().as_socket().unwrap().port();
    let url = format!("https://127.0.0.1:{port}/ovirt-engine/api");
    let out = run({
        let mut cmd = Command::new(DUMP);
        cmd.args(["--url", &url, "--user", "admin@internal", "--retries", "1"])
            .env("OVIRT_PASSWORD", "x");
        cmd
    });
    let line = assert_fails(&out, 69);
    assert!(line.contains(&url), "{line}");
    drop(held);
}

#[test]
fn tls_verification_failure_exits_77_and_mentions_ca_file() {
    let sim = world_sim(&[]);
    let mut cmd = Command::new(DUMP);
    cmd.args(["--url", &sim.url, "--user", &sim.user])
        .env("OVIRT_PASSWORD", &sim.password);
    let line = assert_fails(&run(cmd), 77);
    assert!(line.contains("certificate verification failed"), "{line}");
    assert!(line.contains("--ca-file"), "{line}");
}

#[test]
fn insecure_warns_once_and_works() {
    let sim = world_sim(&[]);
    let mut cmd = Command::new(DUMP);
    cmd.args(["--url", &sim.url, "--user", &sim.user, "--insecure"])
        .env("OVIRT_PASSWORD", &sim.password);
    let out = run(cmd);
    let vms = records(&out);
    assert!(!vms.is_empty());
    let err = stderr(&out);
    assert_eq!(err.matches("--insecure").count(), 1, "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
}

/// A previous good export that a failed run must leave alone.
fn previous_export(dir: &Path) -> (PathBuf, Vec<u8>) {
    let path = dir.join("out.jsonl");
    let old = b"{\"schema\":1,\"id\":\"old\",\"name\":\"last good export\"}\n".to_vec();
    std::fs::write(&path, &old).unwrap();
    (path, old)
}

#[test]
fn a_storm_of_500s_exits_69_and_keeps_the_last_export() {
    let sim = world_sim(&[]);
    sim.set_faults(serde_json::json!({"fail_path": "/ovirt-engine/api/vms"}));
    let dir = tempfile::tempdir().unwrap();
    let (path, old) = previous_export(dir.path());
    let out = run(dump_cmd(
        &sim,
        &["-o", path.to_str().unwrap(), "--retries", "2"],
    ));
    let line = assert_fails(&out, 69);
    assert!(line.contains("/ovirt-engine/api/vms"), "{line}");
    assert!(line.contains("HTTP 50"), "{line}");
    assert_eq!(
        std::fs::read(&path).unwrap(),
        old,
        "the last good export is intact"
    );
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        1,
        "no temporary file left"
    );
}

#[test]
fn a_malformed_response_exits_76_and_keeps_the_last_export() {
    let sim = world_sim(&[]);
    sim.set_faults(serde_json::json!({"malformed_path": "/ovirt-engine/api/vms"}));
    let dir = tempfile::tempdir().unwrap();
    let (path, old) = previous_export(dir.path());
    let out = run(dump_cmd(&sim, &["-o", path.to_str().unwrap()]));
    let line = assert_fails(&out, 76);
    assert!(line.contains("malformed response"), "{line}");
    assert_eq!(std::fs::read(&path).unwrap(), old);
}

#[test]
fn an_expired_token_leads_to_one_login_more() {
    // Tokens live 1 s; each request takes 150 ms and one runs at a time, so the export outlives
    // its first token.
    let sim = world_sim(&["--token-ttl", "1s", "--latency", "150ms"]);
    let world = load_world(&demo_world_path());
    let started = std::time::Instant::now();
    let out = run(dump_cmd(&sim, &["--concurrency", "1"]));
    let elapsed_secs = started.elapsed().as_secs_f64();
    let got = records(&out);
    assert_eq!(got.len(), world["vms"].as_array().unwrap().len());
    let counts = sim.requests();
    let logins = counts["by_path"]["/ovirt-engine/sso/oauth/token"]
        .as_u64()
        .unwrap_or(0);
    assert!(
        logins >= 2,
        "the token expired during the run, so ovirt-dump logged in again: {counts}"
    );
    let api_requests: u64 = counts["by_path"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(path, _)| path.starts_with("/ovirt-engine/api"))
        .map(|(_, n)| n.as_u64().unwrap())
        .sum();
    // One re-login per expiry, not one per request: one request at a time, so each 401 (the
    // token expired) is followed by exactly one login, and no login happens without one. This
    // holds at any machine speed; ovirt-sim counts the 401s it answered.
    let refused = counts["unauthorized"].as_u64().unwrap();
    assert_eq!(
        logins,
        1 + refused,
        "{logins} logins after {refused} refused requests: {counts}"
    );
    let expiries = elapsed_secs.ceil() as u64;
    assert!(
        logins <= expiries + 1,
        "{logins} logins in {elapsed_secs:.1} s with 1 s tokens"
    );
    assert!(
        api_requests > logins,
        "{logins} logins for {api_requests} API requests"
    );
}

#[test]
fn the_password_never_reaches_stderr() {
    let sim = world_sim(&[]);
    let out = run(dump_cmd(&sim, &["-vv"]));
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("GET "), "-vv logs requests: {err}");
    assert!(!err.contains(&sim.password), "password in stderr");
    assert!(!err.to_lowercase().contains("bearer"), "token in stderr");
    assert!(!err.contains("access_token"), "token in stderr");
    // Nor when the login fails.
    let mut cmd = dump_cmd(&sim, &["-vvv"]);
    cmd.env("OVIRT_PASSWORD", "s3cret-wrong-pw");
    let err = stderr(&run(cmd));
    assert!(!err.contains("s3cret-wrong-pw"), "{err}");
}

#[test]
fn a_closed_stdout_is_a_quiet_success() {
    let sim = Sim::start(&["--tls", "--generate", "1000", "--seed", "1"]);
    let mut child = dump_cmd(&sim, &[])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    // `| head -1`: the reader is gone after one line.
    let out = child.wait_with_output().unwrap();
    assert!(first.starts_with("{\"schema\":1"), "{first}");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stderr(&out).is_empty(), "{}", stderr(&out));
}

#[test]
fn configuration_errors_exit_78() {
    let mut cmd = Command::new(DUMP);
    cmd.args([
        "--url",
        "https://127.0.0.1:9/ovirt-engine/api",
        "--user",
        "admin@internal",
    ])
    .env_remove("OVIRT_PASSWORD");
    let line = assert_fails(&run(cmd), 78);
    assert!(
        line.contains("OVIRT_PASSWORD") && line.contains("--password-file"),
        "{line}"
    );

    let mut cmd = Command::new(DUMP);
    cmd.args([
        "--url",
        "https://127.0.0.1:9/ovirt-engine/api",
        "--user",
        "admin@internal",
    ])
    .args(["--ca-file", "/nonexistent/ca.pem"])
    .env("OVIRT_PASSWORD", "x");
    let line = assert_fails(&run(cmd), 78);
    assert!(line.contains("/nonexistent/ca.pem"), "{line}");
}

#[test]
fn password_file_and_search_pass_through() {
    let sim = world_sim(&[]);
    let world = load_world(&demo_world_path());
    let dir = tempfile::tempdir().unwrap();
    let pw = dir.path().join("pw");
    std::fs::write(&pw, format!("{}\n", sim.password)).unwrap();
    let up = world["vms"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|vm| vm["status"] == "up")
        .count();
    let mut cmd = dump_cmd(
        &sim,
        &[
            "--password-file",
            pw.to_str().unwrap(),
            "--search",
            "status=up",
            "--page-size",
            "2",
        ],
    );
    cmd.env_remove("OVIRT_PASSWORD");
    let got = records(&run(cmd));
    assert_eq!(got.len(), up);
    assert!(got.iter().all(|r| r["status"] == "up"));
}
