//! The guest's addresses per MAC against the plan: ip-budget's allocations (`--allocations`, one
//! record per NIC with its new address) where there is one, else the addresses the source's
//! agent reported. Guest-reported addresses are untrusted: parsed, never passed on as text.

use crate::checks::ExpectedNic;
use crate::finding::{ADDRESSES, DNS, Outcome};
use common::jsonl::Inputs;
use common::record::VmRecord;
use common::untrusted::{for_terminal, parse_ip, parse_mac};
use common::{Error, Result};
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;
use std::path::PathBuf;

/// ip-budget `--allocate`'s record for one NIC, the fields read here.
#[derive(Debug, Clone, Deserialize)]
struct AllocationRecord {
    mac: String,
    #[serde(default)]
    new_ipv4: Option<String>,
    #[serde(default)]
    new_ipv6: Option<String>,
}

/// MAC -> the addresses planned for it.
pub type Allocations = HashMap<String, BTreeSet<IpAddr>>;

pub fn read_allocations(paths: &[PathBuf]) -> Result<Allocations> {
    let mut allocations = Allocations::new();
    if paths.is_empty() {
        return Ok(allocations);
    }
    Inputs::new(paths).for_each(|record: AllocationRecord, location| {
        let mac = parse_mac(&record.mac).ok_or_else(|| {
            Error::data(format!("{location}: {:?} is not a MAC address", record.mac))
        })?;
        let mut planned = BTreeSet::new();
        for text in [&record.new_ipv4, &record.new_ipv6].into_iter().flatten() {
            let ip = parse_ip(text)
                .ok_or_else(|| Error::data(format!("{location}: {text:?} is not an IP address")))?;
            planned.insert(ip);
        }
        allocations.insert(mac, planned);
        Ok(())
    })?;
    Ok(allocations)
}

/// Addresses that say where a guest is: not loopback, not link-local (ip-budget does not count
/// them either).
fn routable(ip: &IpAddr) -> bool {
    match ip {
        IpAddr::V4(a) => !a.is_loopback() && !a.is_link_local() && !a.is_unspecified(),
        IpAddr::V6(a) => {
            !a.is_loopback() && !a.is_unspecified() && (a.segments()[0] & 0xffc0) != 0xfe80
        }
    }
}

fn parsed(texts: impl IntoIterator<Item = impl AsRef<str>>) -> BTreeSet<IpAddr> {
    texts
        .into_iter()
        .filter_map(|t| parse_ip(t.as_ref()))
        .filter(routable)
        .collect()
}

/// The addresses the source's agent reported per MAC.
fn source_addresses(record: &VmRecord) -> HashMap<String, BTreeSet<IpAddr>> {
    record
        .nics()
        .iter()
        .filter_map(|n| {
            let mac = parse_mac(n.mac.as_deref()?)?;
            Some((mac, parsed(n.ipv4.iter().chain(&n.ipv6))))
        })
        .collect()
}

/// The guest's addresses per MAC (VMI `status.interfaces[]`: `mac`, `ipAddresses`, else
/// `ipAddress`).
pub fn reported(vmi: &Value) -> HashMap<String, BTreeSet<IpAddr>> {
    let mut out: HashMap<String, BTreeSet<IpAddr>> = HashMap::new();
    for iface in vmi["status"]["interfaces"].as_array().into_iter().flatten() {
        let Some(mac) = iface["mac"].as_str().and_then(parse_mac) else {
            continue;
        };
        let list: Vec<&str> = match iface["ipAddresses"].as_array() {
            Some(ips) => ips.iter().filter_map(Value::as_str).collect(),
            None => iface["ipAddress"].as_str().into_iter().collect(),
        };
        out.entry(mac).or_default().extend(parsed(list));
    }
    out
}

fn text(set: &BTreeSet<IpAddr>) -> String {
    if set.is_empty() {
        return "none".into();
    }
    set.iter()
        .map(IpAddr::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Per carried NIC not on the pod network: the addresses planned for it (its allocation, else
/// the source's) and the source's.
pub struct Plan {
    pub nics: Vec<(String, BTreeSet<IpAddr>, BTreeSet<IpAddr>)>,
}

impl Plan {
    pub fn new(record: &VmRecord, expected: &[ExpectedNic], allocations: &Allocations) -> Plan {
        let source = source_addresses(record);
        let nics = expected
            .iter()
            .filter(|n| n.destination.is_some() && !n.on_pod_network())
            .map(|n| {
                let old = source.get(&n.mac).cloned().unwrap_or_default();
                let planned = allocations
                    .get(&n.mac)
                    .cloned()
                    .unwrap_or_else(|| old.clone());
                (n.mac.clone(), planned, old)
            })
            .collect();
        Plan { nics }
    }

    /// Every planned address of the VM.
    pub fn planned(&self) -> BTreeSet<IpAddr> {
        self.nics
            .iter()
            .flat_map(|(_, p, _)| p.iter().copied())
            .collect()
    }

    /// Old addresses the plan gives up.
    pub fn given_up(&self) -> BTreeSet<IpAddr> {
        let planned = self.planned();
        let old = self.nics.iter().flat_map(|(_, _, o)| o.iter().copied());
        old.filter(|ip| !planned.contains(ip)).collect()
    }
}

/// Kept, changed as planned, or unexpected, per MAC.
pub fn check(plan: &Plan, vmi: &Value) -> Outcome {
    let guest = reported(vmi);
    let (mut notes, mut wrong) = (Vec::new(), Vec::new());
    let (mut expected, mut actual) = (serde_json::Map::new(), serde_json::Map::new());
    for (mac, planned, old) in &plan.nics {
        let Some(have) = guest.get(mac) else {
            continue;
        };
        expected.insert(mac.clone(), json!(planned));
        actual.insert(mac.clone(), json!(have));
        if planned.is_empty() {
            notes.push(format!("{mac}: {} (nothing known to compare)", text(have)));
        } else if planned.is_subset(have) && planned == old {
            notes.push(format!("{mac}: {} kept", text(planned)));
        } else if planned.is_subset(have) {
            notes.push(format!(
                "{mac}: changed as planned, {} -> {}",
                text(old),
                text(planned)
            ));
        } else if !old.is_empty() && old.is_subset(have) {
            wrong.push(format!(
                "{mac}: kept {}, planned {}",
                text(old),
                text(planned)
            ));
        } else {
            wrong.push(format!(
                "{mac}: unexpected {}, planned {}",
                text(have),
                text(planned)
            ));
        }
    }
    let (e, a) = (Value::Object(expected), Value::Object(actual));
    if wrong.is_empty() {
        let message = if notes.is_empty() {
            "no NIC off the pod network to compare".to_string()
        } else {
            notes.join("; ")
        };
        Outcome::pass(ADDRESSES, message).with(e, a)
    } else {
        Outcome::fail(ADDRESSES, wrong.join("; ")).with(e, a)
    }
}

/// The FQDN's answer against the plan: at least one planned address, none the plan gave up.
pub fn dns_check(
    fqdn: &str,
    plan: &Plan,
    answer: std::result::Result<BTreeSet<IpAddr>, String>,
) -> Outcome {
    let name = for_terminal(fqdn);
    let planned = plan.planned();
    let expected = json!(planned);
    let answer = match answer {
        Ok(a) => a,
        Err(e) => return Outcome::fail(DNS, format!("{name}: {e}")).with(expected, Value::Null),
    };
    let actual = json!(answer);
    if planned.is_empty() {
        return Outcome::pass(
            DNS,
            format!(
                "{name} resolves to {} (no planned address to compare)",
                text(&answer)
            ),
        )
        .with(expected, actual);
    }
    let stale: BTreeSet<IpAddr> = answer.intersection(&plan.given_up()).copied().collect();
    if !stale.is_empty() {
        return Outcome::fail(
            DNS,
            format!(
                "{name} resolves to {}, the old address; expected {}",
                text(&stale),
                text(&planned)
            ),
        )
        .with(expected, actual);
    }
    if answer.intersection(&planned).next().is_none() {
        return Outcome::fail(
            DNS,
            format!(
                "{name} resolves to {}; expected {}",
                text(&answer),
                text(&planned)
            ),
        )
        .with(expected, actual);
    }
    Outcome::pass(DNS, format!("{name} resolves to {}", text(&answer))).with(expected, actual)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(planned: &[&str], old: &[&str]) -> Plan {
        let set = |l: &[&str]| l.iter().map(|a| a.parse().unwrap()).collect();
        Plan {
            nics: vec![("56:6f:00:00:00:01".into(), set(planned), set(old))],
        }
    }

    fn vmi(ips: &[&str]) -> Value {
        json!({"status": {"interfaces": [{"mac": "56:6F:00:00:00:01", "ipAddresses": ips}]}})
    }

    #[test]
    fn addresses_kept_changed_or_unexpected() {
        let kept = check(
            &plan(&["10.0.0.5"], &["10.0.0.5"]),
            &vmi(&["10.0.0.5", "fe80::1"]),
        );
        assert!(kept.ok && kept.message.contains("kept"), "{kept:?}");
        let moved = plan(&["10.20.0.2"], &["10.0.0.5"]);
        let changed = check(&moved, &vmi(&["10.20.0.2/24"]));
        assert!(
            changed.ok && changed.message.contains("changed as planned"),
            "{changed:?}"
        );
        let stayed = check(&moved, &vmi(&["10.0.0.5"]));
        assert!(!stayed.ok && stayed.message.contains("kept 10.0.0.5, planned 10.20.0.2"));
        let other = check(&moved, &vmi(&["192.0.2.7", "not an address"]));
        assert!(
            !other.ok && other.message.contains("unexpected 192.0.2.7"),
            "{other:?}"
        );
    }

    #[test]
    fn dns_stale_wrong_or_right() {
        let moved = plan(&["10.20.0.2"], &["10.0.0.5"]);
        let set = |l: &[&str]| Ok(l.iter().map(|a| a.parse().unwrap()).collect());
        assert!(dns_check("a.example", &moved, set(&["10.20.0.2"])).ok);
        let stale = dns_check("a.example", &moved, set(&["10.0.0.5"]));
        assert!(
            !stale.ok && stale.message.contains("the old address"),
            "{stale:?}"
        );
        assert!(!dns_check("a.example", &moved, set(&["10.9.9.9"])).ok);
        assert!(!dns_check("a.example", &moved, Err("does not resolve".into())).ok);
    }
}
