//! The guests once they run on the target, as KubeVirt v1.9.0 reports them in a VMI's status
//! (`staging/src/kubevirt.io/api/core/v1/types.go`: condition `AgentConnected`, `guestOSInfo`,
//! `interfaces[]`): what each source VM's agent reported, the target networks' DHCP reservations
//! (`--dhcp`, ip-budget's allocations) and the world's after-move faults.

use crate::world::{Guest, World};
use common::{Error, Result};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::path::Path;

/// `pkg/network/vmispec/infosource.go`.
const INFO_DOMAIN: &str = "domain";
const INFO_DOMAIN_AND_AGENT: &str = "domain, guest-agent";
const INFO_MULTUS: &str = "multus-status";

#[derive(Debug, Default)]
pub struct Guests {
    /// By source VM id: the guest and its NICs' MACs in NIC order.
    by_vm: HashMap<String, (Guest, Vec<String>)>,
    /// MAC -> the addresses DHCP hands out on the target network.
    dhcp: HashMap<String, Vec<String>>,
}

/// What a running guest shows: whether it booted, the extra conditions, `guestOSInfo` and
/// `interfaces`.
pub struct Report {
    pub boots: bool,
    pub agent: bool,
    pub guest_os: Value,
    pub interfaces: Value,
}

impl Guests {
    pub fn new(world: &World, dhcp: Option<&Path>) -> Result<Guests> {
        let by_vm = world
            .vms
            .iter()
            .map(|vm| {
                let macs = vm.nics.iter().map(|(mac, _)| mac.clone()).collect();
                (vm.id.clone(), (vm.guest.clone(), macs))
            })
            .collect();
        let dhcp = match dhcp {
            Some(path) => read_dhcp(path)?,
            None => HashMap::new(),
        };
        Ok(Guests { by_vm, dhcp })
    }

    /// The guest of the VM migrated from source VM `vm_id` in a VMI running with `spec`, on a
    /// pod with `pod_ip` (what KubeVirt reports for a pod-network interface).
    pub fn report(&self, vm_id: &str, spec: &Value, pod_ip: Option<&str>) -> Report {
        let (guest, macs) = match self.by_vm.get(vm_id) {
            Some((g, m)) => (g.clone(), m.as_slice()),
            None => (Guest::default(), &[][..]),
        };
        let agent = guest.boots() && guest.has_agent();
        let networks: HashMap<&str, &Value> = spec["networks"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|n| Some((n["name"].as_str()?, n)))
            .collect();
        let interfaces: Vec<Value> = spec["domain"]["devices"]["interfaces"]
            .as_array()
            .into_iter()
            .flatten()
            .enumerate()
            .map(|(i, iface)| {
                let name = iface["name"].as_str().unwrap_or_default();
                let mac = iface["macAddress"].as_str().unwrap_or_default();
                let multus = networks.get(name).is_some_and(|n| n["multus"].is_object());
                let mut source = if agent {
                    INFO_DOMAIN_AND_AGENT
                } else {
                    INFO_DOMAIN
                }
                .to_string();
                if multus {
                    source = format!("{source}, {INFO_MULTUS}");
                }
                let ips: Vec<String> = if iface["masquerade"].is_object() {
                    pod_ip.map(str::to_string).into_iter().collect()
                } else if agent {
                    self.addresses(&guest, macs, mac)
                } else {
                    Vec::new()
                };
                let mut status = json!({"name": name, "mac": mac, "infoSource": source,
                    "queueCount": 1, "linkState": "up"});
                if agent {
                    status["interfaceName"] = Value::from(format!("eth{i}"));
                }
                if let Some(first) = ips.first() {
                    status["ipAddress"] = Value::from(first.clone());
                    status["ipAddresses"] = Value::from(ips.clone());
                }
                status
            })
            .collect();
        Report {
            boots: guest.boots(),
            agent,
            guest_os: if agent {
                guest_os_info(&guest.os)
            } else {
                json!({})
            },
            interfaces: Value::from(interfaces),
        }
    }

    /// The addresses a guest NIC comes up with: the world's planted ones, else its DHCP
    /// reservation's, else what the source's agent reported on the NIC with that MAC.
    fn addresses(&self, guest: &Guest, macs: &[String], mac: &str) -> Vec<String> {
        if let Some(planted) = guest.planted_addresses(mac) {
            return planted;
        }
        if let Some(leased) = self.dhcp.get(mac) {
            return leased.clone();
        }
        macs.iter()
            .position(|m| m == mac)
            .and_then(|i| guest.addresses.get(i).cloned())
            .unwrap_or_default()
    }
}

/// `guestOSInfo` from the oVirt agent's report (`guest_os`): the distribution as name, with its
/// version, kernel and architecture.
fn guest_os_info(os: &Value) -> Value {
    let text = |k: &str| os[k].as_str().unwrap_or_default().to_string();
    let pretty = format!("{} {}", text("distribution"), text("version"));
    json!({"name": text("distribution"), "prettyName": pretty.trim(), "version": text("version"),
        "versionId": text("version"), "kernelRelease": text("kernel"), "machine": text("architecture")})
}

/// ip-budget `--allocate` records (JSON lines): per `mac`, `new_ipv4` and `new_ipv6`.
fn read_dhcp(path: &Path) -> Result<HashMap<String, Vec<String>>> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::no_input(format!("{}: {e}", path.display())))?;
    let mut leases = HashMap::new();
    for (n, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let record: Value = serde_json::from_str(line)
            .map_err(|e| Error::data(format!("{}:{}: {e}", path.display(), n + 1)))?;
        let Some(mac) = record["mac"].as_str() else {
            continue;
        };
        let ips: Vec<String> = ["new_ipv4", "new_ipv6"]
            .iter()
            .filter_map(|k| record[*k].as_str().map(str::to_string))
            .collect();
        leases.insert(mac.to_ascii_lowercase(), ips);
    }
    Ok(leases)
}
