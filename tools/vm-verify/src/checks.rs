//! The checks of one migrated VM against its source record: each reads the VirtualMachine, its
//! VirtualMachineInstance or PVCs as the API server returns them (JSON) and says what it found.
//! What Forklift should have carried over follows Forklift v2.12.5's oVirt builder
//! (common::forklift::builder); field names are KubeVirt v1.9.0's (`kubevirt.io/api/core/v1`).

use crate::finding::*;
use common::forklift::builder::{self, Firmware};
use common::forklift::plan::Destination;
use common::record::{Nic, VmRecord};
use common::size::quantity_bytes;
use common::untrusted::{for_terminal, parse_mac};
use serde_json::{Value, json};
use std::collections::HashMap;

/// One NetworkMap entry: its source reference and destination.
#[derive(Debug, Clone, Default)]
pub struct MapEntry {
    pub source_id: String,
    pub source_name: String,
    pub kind: String,
    pub namespace: String,
    pub name: String,
}

impl MapEntry {
    fn destination(&self) -> Destination<'_> {
        Destination {
            kind: &self.kind,
            namespace: &self.namespace,
            name: &self.name,
        }
    }

    /// Forklift's `ByRef`: the id when the entry gives one, else its name's last path segment
    /// (`RDU/vlan201` is `vlan201`) against the network's name, or the whole against its path.
    fn covers(&self, nic: &Nic) -> bool {
        let Some(network) = nic.network.as_ref() else {
            return false;
        };
        if !self.source_id.is_empty() {
            return self.source_id == network.id;
        }
        let short = self.source_name.rsplit('/').next().unwrap_or_default();
        network.path.as_deref() == Some(self.source_name.as_str())
            || network.name.as_deref() == Some(short)
    }
}

/// A source NIC as the VirtualMachine should carry it.
#[derive(Debug, Clone)]
pub struct ExpectedNic {
    /// The MAC as the engine writes it (lowercase, `:`).
    pub mac: String,
    /// The destination the map gives it; `None`: Forklift leaves the NIC out (no entry, ignored,
    /// or no NAD left).
    pub destination: Option<MapEntry>,
}

impl ExpectedNic {
    pub fn on_pod_network(&self) -> bool {
        self.destination.as_ref().is_some_and(|d| d.kind == "pod")
    }

    /// How the VM's `spec.template.spec.networks[]` entry names the destination.
    fn network_text(&self) -> String {
        match &self.destination {
            Some(d) if d.kind == "pod" => "pod".into(),
            Some(d) => format!("multus:{}", builder::multus_network_name(&d.destination())),
            None => "none".into(),
        }
    }
}

/// The source's NICs with the destinations Forklift assigns them (v2.12.5 `mapNetworks`,
/// common::forklift::builder::assign_networks), in NIC order.
pub fn expected_nics(record: &VmRecord, map: &[MapEntry]) -> Vec<ExpectedNic> {
    let per_nic: Vec<Vec<&MapEntry>> = record
        .nics()
        .iter()
        .map(|nic| {
            let has_profile = nic.vnic_profile.is_some();
            map.iter()
                .filter(|e| has_profile && e.covers(nic))
                .collect()
        })
        .collect();
    let destinations: Vec<Vec<Destination>> = per_nic
        .iter()
        .map(|entries| entries.iter().map(|e| e.destination()).collect())
        .collect();
    let chosen = builder::assign_networks(&destinations);
    record
        .nics()
        .iter()
        .zip(chosen)
        .enumerate()
        .map(|(i, (nic, chosen))| ExpectedNic {
            mac: nic.mac.as_deref().and_then(parse_mac).unwrap_or_default(),
            destination: chosen.and_then(|d| {
                per_nic[i]
                    .iter()
                    .find(|e| e.destination() == d)
                    .map(|e| (*e).clone())
            }),
        })
        .collect()
}

fn template_spec(vm: &Value) -> &Value {
    &vm["spec"]["template"]["spec"]
}

/// Whether the source VM should run on the target: it was up.
pub fn should_run(record: &VmRecord) -> bool {
    record.status.as_deref() == Some("up")
}

/// Whether a VirtualMachine is set to run (`runStrategy` Always or RerunOnFailure, or the
/// deprecated `running: true`).
pub fn set_to_run(vm: &Value) -> bool {
    matches!(
        vm["spec"]["runStrategy"].as_str(),
        Some("Always" | "RerunOnFailure")
    ) || vm["spec"]["running"] == true
}

fn run_strategy_text(vm: &Value) -> String {
    match (vm["spec"]["runStrategy"].as_str(), &vm["spec"]["running"]) {
        (Some(s), _) => s.to_string(),
        (None, Value::Bool(b)) => format!("running: {b}"),
        _ => "none".into(),
    }
}

pub fn run_strategy(record: &VmRecord, vm: &Value, started: bool) -> Outcome {
    let status = record.status.as_deref().unwrap_or("unknown");
    let (want, have) = (should_run(record), set_to_run(vm));
    let strategy = run_strategy_text(vm);
    let message = match (want, have) {
        (true, true) if started => format!("the source was {status}: started (--start)"),
        (true, true) => format!("the source was {status}, runStrategy {strategy}"),
        (false, false) => format!("the source was {status}, runStrategy {strategy}"),
        (true, false) => format!(
            "the source was {status} but runStrategy is {strategy}: it does not run (--start starts it)"
        ),
        (false, true) => format!("the source was {status} but runStrategy is {strategy}"),
    };
    Outcome::compare(RUN_STRATEGY, json!(want), json!(have), message).with(
        json!({"runs": want}),
        json!({"runs": have, "runStrategy": strategy}),
    )
}

fn condition<'a>(vmi: &'a Value, kind: &str) -> Option<&'a Value> {
    vmi["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == kind)
}

fn condition_true(vmi: &Value, kind: &str) -> bool {
    condition(vmi, kind).is_some_and(|c| c["status"] == "True")
}

/// Running and Ready: what the boot wait waits for.
pub fn is_running(vmi: Option<&Value>) -> bool {
    vmi.is_some_and(|i| i["status"]["phase"] == "Running" && condition_true(i, "Ready"))
}

/// Whether the guest has reported all it will: agent connected and OS known (or no agent
/// expected).
pub fn guest_settled(vmi: Option<&Value>, agent_expected: bool) -> bool {
    is_running(vmi)
        && (!agent_expected
            || vmi.is_some_and(|i| condition_true(i, "AgentConnected") && !os_name(i).is_empty()))
}

pub fn running(vmi: Option<&Value>, timeout_secs: f64) -> Outcome {
    let Some(vmi) = vmi else {
        return Outcome::fail(
            RUNNING,
            format!("no VirtualMachineInstance after {timeout_secs} s"),
        );
    };
    let phase = vmi["status"]["phase"].as_str().unwrap_or("unknown");
    let ready = condition(vmi, "Ready");
    let reason = ready
        .and_then(|c| c["message"].as_str().or(c["reason"].as_str()))
        .map(|r| format!(" ({})", for_terminal(r)))
        .unwrap_or_default();
    if is_running(Some(vmi)) {
        Outcome::pass(RUNNING, "Running and Ready")
    } else {
        Outcome::fail(
            RUNNING,
            format!("{phase}, not Running and Ready after {timeout_secs} s{reason}"),
        )
    }
    .with(
        json!({"phase": "Running", "ready": true}),
        json!({"phase": phase, "ready": condition_true(vmi, "Ready")}),
    )
}

/// Whether the source shows a guest agent: it reported the guest OS or an address.
pub fn source_has_agent(record: &VmRecord) -> bool {
    record.guest_os.is_some()
        || record
            .nics()
            .iter()
            .any(|n| !n.ipv4.is_empty() || !n.ipv6.is_empty())
}

pub fn guest_agent(record: &VmRecord, vmi: &Value) -> Outcome {
    let connected = condition_true(vmi, "AgentConnected");
    if !source_has_agent(record) {
        let message = if connected {
            "connected (the source reported no agent)"
        } else {
            "not connected, as at the source (no agent reported there)"
        };
        return Outcome::pass(GUEST_AGENT, message);
    }
    if connected {
        Outcome::pass(GUEST_AGENT, "AgentConnected")
    } else {
        Outcome::fail(
            GUEST_AGENT,
            "the guest agent did not connect (no AgentConnected condition), though the source had one",
        )
    }
}

fn os_name(vmi: &Value) -> String {
    let info = &vmi["status"]["guestOSInfo"];
    ["prettyName", "name", "id"]
        .iter()
        .find_map(|k| info[*k].as_str().filter(|s| !s.is_empty()))
        .unwrap_or_default()
        .to_string()
}

pub fn guest_os(vmi: &Value) -> Outcome {
    let name = os_name(vmi);
    if name.is_empty() {
        Outcome::fail(
            GUEST_OS,
            "the guest reports no operating system (guestOSInfo is empty)",
        )
    } else {
        // Guest-reported: escaped for terminals; the record carries it as reported.
        Outcome::pass(GUEST_OS, format!("reports {}", for_terminal(&name)))
            .with(Value::Null, json!(name))
    }
}

pub fn cpu(record: &VmRecord, vm: &Value) -> Outcome {
    let cpu = record.cpu.clone().unwrap_or_default();
    let expected = json!({"sockets": cpu.sockets.unwrap_or(1), "cores": cpu.cores.unwrap_or(1),
        "threads": cpu.threads.unwrap_or(1)});
    let domain = &template_spec(vm)["domain"]["cpu"];
    let count = |k: &str| domain[k].as_u64().unwrap_or(1);
    let actual =
        json!({"sockets": count("sockets"), "cores": count("cores"), "threads": count("threads")});
    let text = |v: &Value| format!("{}x{}x{}", v["sockets"], v["cores"], v["threads"]);
    let message = if expected == actual {
        format!("{} (sockets x cores x threads)", text(&actual))
    } else {
        format!(
            "{} (sockets x cores x threads), the source has {}",
            text(&actual),
            text(&expected)
        )
    };
    Outcome::compare(CPU, expected, actual, message)
}

pub fn memory(record: &VmRecord, vm: &Value) -> Outcome {
    let memory = &template_spec(vm)["domain"]["memory"]["guest"];
    let actual = memory
        .as_str()
        .and_then(quantity_bytes)
        .or_else(|| memory.as_u64());
    let expected = record.memory_bytes;
    let message = match (expected, actual) {
        (Some(e), Some(a)) if e == a => format!("{a} bytes"),
        (Some(e), Some(a)) => format!("{a} bytes, the source has {e}"),
        (_, None) => "no guest memory set".to_string(),
        (None, Some(a)) => format!("{a} bytes (the source record has no memory size)"),
    };
    let ok = expected.is_none() || expected == actual;
    Outcome {
        ok,
        ..Outcome::compare(MEMORY, json!(expected), json!(actual), message)
    }
}

pub fn firmware(record: &VmRecord, vm: &Value) -> Outcome {
    let cluster_bios = record.cluster.as_ref().and_then(|c| c.bios_type.as_deref());
    let expected = builder::firmware(record.bios_type.as_deref(), cluster_bios);
    let bootloader = &template_spec(vm)["domain"]["firmware"]["bootloader"];
    let actual = Firmware::of_bootloader(bootloader);
    let actual_text = actual.map(Firmware::as_str).unwrap_or("none");
    let bios = record.bios_type.as_deref().unwrap_or("cluster_default");
    let message = if Some(expected) == actual {
        format!("{actual_text}, as Forklift maps the source's {bios}")
    } else {
        format!(
            "{actual_text}, but Forklift maps the source's {bios} to {}",
            expected.as_str()
        )
    };
    Outcome::compare(
        FIRMWARE,
        json!(expected.as_str()),
        json!(actual_text),
        message,
    )
}

/// Per source disk, the size it must at least have: a LUN's logical unit, else the provisioned
/// size.
fn source_disk_bytes(record: &VmRecord) -> Vec<u64> {
    record
        .disks()
        .iter()
        .map(|d| {
            if d.is_lun() {
                d.lun_size_bytes.unwrap_or(0)
            } else {
                d.provisioned_bytes.unwrap_or(0)
            }
        })
        .collect()
}

/// A PVC's size: its bound capacity, else its request.
pub fn pvc_bytes(pvc: &Value) -> Option<u64> {
    let capacity = pvc["status"]["capacity"]["storage"].as_str();
    let request = pvc["spec"]["resources"]["requests"]["storage"].as_str();
    capacity.or(request).and_then(quantity_bytes)
}

/// The claim names of the VM's disks, in disk order (`None`: not a PVC-backed disk).
pub fn disk_claims(vm: &Value) -> Vec<Option<String>> {
    let spec = template_spec(vm);
    let volumes: HashMap<&str, &Value> = spec["volumes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| Some((v["name"].as_str()?, v)))
        .collect();
    spec["domain"]["devices"]["disks"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|d| {
            let volume = volumes.get(d["name"].as_str().unwrap_or_default())?;
            let claim = volume["persistentVolumeClaim"]["claimName"]
                .as_str()
                .or(volume["dataVolume"]["name"].as_str())?;
            Some(claim.to_string())
        })
        .collect()
}

/// As many disks as the source, and (sizes sorted, largest first, so that the order Forklift
/// lists them in does not matter) none smaller than the source disk it stands for.
pub fn disks(record: &VmRecord, vm: &Value, pvcs: &HashMap<String, Value>) -> Outcome {
    let mut expected = source_disk_bytes(record);
    let claims = disk_claims(vm);
    let mut actual: Vec<Option<u64>> = claims
        .iter()
        .map(|c| c.as_ref().and_then(|c| pvcs.get(c)).and_then(pvc_bytes))
        .collect();
    expected.sort_unstable_by(|a, b| b.cmp(a));
    actual.sort_unstable_by(|a, b| b.cmp(a));
    let record = |e: &[u64], a: &[Option<u64>]| (json!(e), json!(a));
    let (e_json, a_json) = record(&expected, &actual);
    if expected.len() != actual.len() {
        return Outcome::fail(
            DISKS,
            format!("{} disks, the source has {}", actual.len(), expected.len()),
        )
        .with(e_json, a_json);
    }
    let missing = claims
        .iter()
        .filter(|c| c.as_ref().is_none_or(|c| !pvcs.contains_key(c)))
        .count();
    if missing > 0 {
        return Outcome::fail(DISKS, format!("{missing} disks without their PVC"))
            .with(e_json, a_json);
    }
    let smaller: Vec<String> = expected
        .iter()
        .zip(&actual)
        .filter(|(e, a)| a.is_none_or(|a| a < **e))
        .map(|(e, a)| format!("{} < {e}", a.unwrap_or(0)))
        .collect();
    if smaller.is_empty() {
        Outcome::pass(
            DISKS,
            format!("{} disks, none smaller than the source's", actual.len()),
        )
        .with(e_json, a_json)
    } else {
        Outcome::fail(
            DISKS,
            format!(
                "disks smaller than the source's (bytes): {}",
                smaller.join(", ")
            ),
        )
        .with(e_json, a_json)
    }
}

/// The VM's interfaces: (network name, MAC as the engine writes it).
fn interfaces(vm: &Value) -> Vec<(String, String)> {
    template_spec(vm)["domain"]["devices"]["interfaces"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|i| {
            let mac = i["macAddress"].as_str().unwrap_or_default();
            (
                i["name"].as_str().unwrap_or_default().to_string(),
                parse_mac(mac).unwrap_or_else(|| mac.to_string()),
            )
        })
        .collect()
}

pub fn nics(expected: &[ExpectedNic], vm: &Value) -> Outcome {
    let carried: Vec<&str> = expected
        .iter()
        .filter(|n| n.destination.is_some())
        .map(|n| n.mac.as_str())
        .collect();
    let have = interfaces(vm);
    let missing: Vec<&str> = carried
        .iter()
        .filter(|m| !have.iter().any(|(_, mac)| mac == *m))
        .copied()
        .collect();
    let left_out = expected.len() - carried.len();
    let note = if left_out > 0 {
        format!(" ({left_out} source NICs the network map does not carry)")
    } else {
        String::new()
    };
    let (e, a) = (json!(carried.len()), json!(have.len()));
    if have.len() == carried.len() && missing.is_empty() {
        Outcome::pass(NICS, format!("{} NICs{note}", have.len())).with(e, a)
    } else if missing.is_empty() {
        Outcome::fail(
            NICS,
            format!("{} NICs, expected {}{note}", have.len(), carried.len()),
        )
        .with(e, a)
    } else {
        Outcome::fail(
            NICS,
            format!(
                "{} NICs, expected {}: no NIC with MAC {}{note}",
                have.len(),
                carried.len(),
                missing.join(", ")
            ),
        )
        .with(e, a)
    }
}

pub fn macs(expected: &[ExpectedNic], vm: &Value) -> Outcome {
    let have = interfaces(vm);
    let foreign: Vec<String> = have
        .iter()
        .filter(|(_, mac)| !expected.iter().any(|n| &n.mac == mac))
        .map(|(name, mac)| {
            if mac.is_empty() {
                format!("{name} has none")
            } else {
                format!("{name} has {mac}")
            }
        })
        .collect();
    let actual = json!(have.iter().map(|(_, m)| m).collect::<Vec<_>>());
    let wanted = json!(expected.iter().map(|n| &n.mac).collect::<Vec<_>>());
    if foreign.is_empty() {
        Outcome::pass(MACS, format!("{} NICs keep their source MAC", have.len()))
            .with(wanted, actual)
    } else {
        Outcome::fail(
            MACS,
            format!("not the source's MAC: {}", foreign.join("; ")),
        )
        .with(wanted, actual)
    }
}

/// How the VM's network named `name` is attached: `pod`, `multus:NS/NAME`, or `none`.
fn attached(vm: &Value, name: &str) -> String {
    let network = template_spec(vm)["networks"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|n| n["name"] == name);
    match network {
        Some(n) if n["pod"].is_object() => "pod".into(),
        Some(n) => match n["multus"]["networkName"].as_str() {
            Some(nad) => format!("multus:{nad}"),
            None => "none".into(),
        },
        None => "none".into(),
    }
}

pub fn networks(expected: &[ExpectedNic], vm: &Value) -> Outcome {
    let have = interfaces(vm);
    let mut wrong = Vec::new();
    let (mut e, mut a) = (serde_json::Map::new(), serde_json::Map::new());
    for nic in expected.iter().filter(|n| n.destination.is_some()) {
        let Some((name, _)) = have.iter().find(|(_, mac)| *mac == nic.mac) else {
            continue;
        };
        let (want, got) = (nic.network_text(), attached(vm, name));
        if want != got {
            wrong.push(format!("{} is on {got}, the map says {want}", nic.mac));
        }
        e.insert(nic.mac.clone(), json!(want));
        a.insert(nic.mac.clone(), json!(got));
    }
    if wrong.is_empty() {
        Outcome::pass(
            NETWORKS,
            format!("{} NICs on their mapped networks", e.len()),
        )
    } else {
        Outcome::fail(NETWORKS, wrong.join("; "))
    }
    .with(Value::Object(e), Value::Object(a))
}

#[cfg(test)]
mod tests {
    use super::*;
    use common::record::{Network, VnicProfile};

    fn nic(mac: &str, network: &str) -> Nic {
        Nic {
            mac: Some(mac.into()),
            vnic_profile: Some(VnicProfile::default()),
            network: Some(Network {
                id: network.into(),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn entry(id: &str, kind: &str, name: &str) -> MapEntry {
        MapEntry {
            source_id: id.into(),
            kind: kind.into(),
            namespace: if kind == "multus" {
                "ns".into()
            } else {
                String::new()
            },
            name: name.into(),
            ..Default::default()
        }
    }

    #[test]
    fn nics_macs_and_networks_against_the_map() {
        let record = VmRecord {
            nics: Some(vec![
                nic("56:6F:00:00:00:01", "n1"),
                nic("56:6f:00:00:00:02", "n2"),
            ]),
            ..Default::default()
        };
        let map = [entry("n1", "multus", "a"), entry("n2", "ignored", "")];
        let expected = expected_nics(&record, &map);
        assert_eq!(expected[0].mac, "56:6f:00:00:00:01");
        assert!(
            expected[1].destination.is_none(),
            "an ignored NIC is not carried"
        );
        let vm = |mac: &str, nad: &str| {
            json!({"spec": {"template": {"spec": {
                "domain": {"devices": {"interfaces": [{"name": "net-0", "macAddress": mac}]}},
                "networks": [{"name": "net-0", "multus": {"networkName": nad}}]}}}})
        };
        let good = vm("56:6f:00:00:00:01", "ns/a");
        assert!(nics(&expected, &good).ok && macs(&expected, &good).ok);
        assert!(networks(&expected, &good).ok);
        assert!(!networks(&expected, &vm("56:6f:00:00:00:01", "ns/b")).ok);
        let other = vm("02:00:00:00:00:09", "ns/a");
        assert!(!macs(&expected, &other).ok && !nics(&expected, &other).ok);
    }

    #[test]
    fn firmware_and_disks() {
        // Forklift v2.12.5 mapFirmware: q35_ovmf -> EFI; the VM's cluster_default -> its cluster's.
        let record = VmRecord {
            bios_type: Some("q35_ovmf".into()),
            disks: Some(vec![common::record::Disk {
                provisioned_bytes: Some(10 << 30),
                ..Default::default()
            }]),
            ..Default::default()
        };
        let vm = |bootloader: Value, claim: &str| {
            json!({"spec": {"template": {"spec": {"domain": {"firmware": {"bootloader": bootloader},
                "devices": {"disks": [{"name": "d"}]}},
                "volumes": [{"name": "d", "persistentVolumeClaim": {"claimName": claim}}]}}}})
        };
        assert!(firmware(&record, &vm(json!({"efi": {}}), "c")).ok);
        assert!(!firmware(&record, &vm(json!({"bios": {}}), "c")).ok);
        let pvc = |size: &str| json!({"status": {"capacity": {"storage": size}}});
        let sized = |size: &str| HashMap::from([("c".to_string(), pvc(size))]);
        assert!(disks(&record, &vm(json!({}), "c"), &sized("11Gi")).ok);
        assert!(!disks(&record, &vm(json!({}), "c"), &sized("9Gi")).ok);
        assert!(!disks(&record, &vm(json!({}), "c"), &HashMap::new()).ok);
    }
}
