//! ip-budget: the addresses VMs use per source network, whether the target networks' subnets hold
//! them, and (with --allocate) a new address per NIC with the DHCP and DNS changes that go with it.

use clap::Parser;
use common::format::{Column, csv_bytes, table_string};
use common::jsonl::Inputs;
use common::mapping::{Mappings, NetworkTarget, SourceObject};
use common::output::Output;
use common::record::{Nic, VmRecord, parse_vm_record};
use common::untrusted::{dns_name_error, for_terminal, is_dns_name, parse_mac};
use common::{Error, ExitCode, Result};
pub use ipnet;
use ipnet::IpNet;
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;

const ABOUT: &str =
    "Count the addresses VMs use per network, check target subnets, allocate new addresses";

const LONG_ABOUT: &str = "\
Reads VM records (JSON lines) from the files given or stdin. Per source network (its DC/network
path and VLAN) it reports: nics, nics_with_ipv4 (NICs with a guest-reported IPv4 address),
ipv4_addresses and ipv6_addresses (distinct addresses; link-local and loopback addresses are not
counted), nics_without_address (no address reported: guest agent missing or VM down), and the target
network --network-map gives it (pod, multus:NS/NAME, ignored, or unmapped).

Target subnets: --subnet TARGET=CIDR (repeatable; TARGET is multus:NS/NAME or NS/NAME; one IPv4 and
one IPv6 subnet per target) and --reserve RANGE (repeatable; a CIDR, one address or FIRST-LAST:
gateways, DHCP pools, addresses in use; applies to every subnet it overlaps) give each target's
capacity. Per target subnet: size (usable hosts: IPv4 without network and broadcast address, /31 2
and /32 1; IPv6 without the subnet-router anycast address), reserved (reserved usable addresses),
needed (one address per NIC mapped there that has an address, plus, with --unaddressed count, the
default, every NIC without one), free (size - reserved), shortfall (needed beyond free). Any
shortfall: exit 1. NICs mapped to pod or ignored need no planned address.

Output: JSON lines, one row per source network (\"report\": \"network\") then one per target subnet
(\"report\": \"target\"); CSV and table print the two as two sections separated by an empty line.

--allocate writes instead one record per NIC that needs an address on a target with a subnet: vm,
vm_id, nic, mac (Forklift keeps MAC addresses), source_network, target, old_ipv4, old_ipv6, new_ipv4,
new_ipv6, changed, fqdn. Allocation is deterministic: NICs in order of VM name, VM id, NIC name; an
old address that lies in the target subnet and is not reserved is kept; every other NIC gets the
lowest free address, never reserved, never given twice, never a network or broadcast address. The
VM's fqdn goes with its first NIC in that order. --format csv gives DHCP reservations (mac,
new_ipv4, new_ipv6, hostname, ...); --format nsupdate gives the DNS changes for nsupdate(1): for
each changed NIC with an fqdn, delete and add its A (AAAA) record, delete the old PTR records and
add the new ones, each change followed by send.

Refused: a CIDR with host bits set (10.20.0.5/24 in --subnet or --reserve: exit 2, the message
names the network, 10.20.0.0/24); with --allocate, a VM whose fqdn (reported by its guest agent,
so untrusted) is not a DNS name and a NIC whose MAC does not parse: named on stderr, left out of
the DNS and DHCP changes, exit 1. Sizes are exact for every prefix (an IPv6 /63 has 2^65 - 1
usable addresses: JSON numbers longer than 64 bits). Memory: one entry per source network and target,
and with --allocate one per NIC.";

/// How NICs without a reported address count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Unaddressed {
    /// They need an address on the target (the guest may use DHCP or be down now)
    Count,
    /// They need none
    Ignore,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    Jsonl,
    Csv,
    Table,
    /// DNS changes for nsupdate (with --allocate)
    Nsupdate,
}

/// Examples, environment and related pages after the help.
pub const DOC: common::cli::Doc = common::cli::Doc {
    examples: &[
        (
            "Addresses per network and whether a /24 holds what vlan201 needs",
            "ip-budget --network-map 'vlan201=multus:vm-networks/vlan201' \\\n    --subnet vm-networks/vlan201=10.20.1.0/24 --reserve 10.20.1.1 --format table owned.jsonl",
        ),
        (
            "A new address per NIC, then the DNS changes for nsupdate",
            "ip-budget --map-file networks.map --subnet vm-networks/vlan201=10.20.1.0/24 --allocate \\\n    --format nsupdate owned.jsonl -o dns.txt",
        ),
    ],
    environment: &[],
    see_also: &["owner-group(1)", "report(1)", "nsupdate(1)"],
};

#[derive(Debug, Parser)]
#[command(name = "ip-budget", version, about = ABOUT, long_about = LONG_ABOUT)]
pub struct Args {
    #[command(flatten)]
    pub io: common::cli::Io,
    /// Map a network: SRC=pod|multus:NS/NAME|ignored; SRC is a name, DC/name, id or * (repeatable)
    #[arg(long = "network-map", value_name = "SRC=DST")]
    pub network_map: Vec<String>,
    /// Read mapping rules from FILE (`network SRC=DST` lines; storage lines are checked, not used)
    #[arg(long = "map-file", value_name = "FILE")]
    pub map_file: Vec<PathBuf>,
    /// A target network's subnet, TARGET=CIDR (multus:NS/NAME=10.20.0.0/24; repeatable)
    #[arg(long, value_name = "TARGET=CIDR")]
    pub subnet: Vec<String>,
    /// Addresses not to use: CIDR, one address, or FIRST-LAST (repeatable)
    #[arg(long, value_name = "RANGE")]
    pub reserve: Vec<String>,
    /// Whether NICs without a reported address need one
    #[arg(long, value_enum, default_value_t = Unaddressed::Count)]
    pub unaddressed: Unaddressed,
    /// Write one record per NIC with a new address instead of the report
    #[arg(long)]
    pub allocate: bool,
    /// TTL of the DNS records --format nsupdate writes
    #[arg(long, value_name = "SECONDS", default_value_t = 3600)]
    pub ttl: u32,
    /// Output format (nsupdate: with --allocate only)
    #[arg(long, value_enum, default_value_t = OutputFormat::Jsonl)]
    pub format: OutputFormat,
    #[command(flatten)]
    pub verbosity: common::cli::Verbosity,
}

pub fn command() -> clap::Command {
    common::cli::command(<Args as clap::CommandFactory>::command(), &DOC)
}

/// An inclusive address range, as numbers (IPv4 in the low 32 bits).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Range {
    pub v6: bool,
    pub first: u128,
    pub last: u128,
}

fn num(ip: IpAddr) -> (bool, u128) {
    match ip {
        IpAddr::V4(a) => (false, u128::from(u32::from(a))),
        IpAddr::V6(a) => (true, u128::from(a)),
    }
}

fn addr(v6: bool, n: u128) -> IpAddr {
    if v6 {
        IpAddr::V6(Ipv6Addr::from(n))
    } else {
        IpAddr::V4(Ipv4Addr::from(n as u32))
    }
}

/// Parses a reserve range: CIDR, one address, or FIRST-LAST.
pub fn parse_range(text: &str) -> std::result::Result<Range, String> {
    let text = text.trim();
    if let Ok(net) = text.parse::<IpNet>() {
        check_network(&net).map_err(|e| format!("{text:?}: {e}"))?;
        let (v6, first) = num(net.network());
        let (_, last) = num(net.broadcast());
        return Ok(Range { v6, first, last });
    }
    if let Ok(ip) = text.parse::<IpAddr>() {
        let (v6, n) = num(ip);
        return Ok(Range {
            v6,
            first: n,
            last: n,
        });
    }
    if let Some((a, b)) = text.split_once('-') {
        let a: IpAddr = a
            .trim()
            .parse()
            .map_err(|_| format!("{text:?}: {a:?} is not an IP address"))?;
        let b: IpAddr = b
            .trim()
            .parse()
            .map_err(|_| format!("{text:?}: {b:?} is not an IP address"))?;
        let ((v6a, first), (v6b, last)) = (num(a), num(b));
        if v6a != v6b {
            return Err(format!("{text:?}: mixes IPv4 and IPv6"));
        }
        if first > last {
            return Err(format!("{text:?}: the first address is above the last"));
        }
        return Ok(Range {
            v6: v6a,
            first,
            last,
        });
    }
    Err(format!("{text:?} is not a CIDR, an address or FIRST-LAST"))
}

/// Refuses a CIDR with host bits set (`2001:db8::/16`): which network was meant is a guess, and
/// truncating it silently planned addresses in a network nobody named.
pub fn check_network(net: &IpNet) -> std::result::Result<(), String> {
    let network = net.trunc();
    if network == *net {
        Ok(())
    } else {
        Err(format!(
            "{net} has host bits set: the network is {network} (or give a longer prefix)"
        ))
    }
}

/// A target subnet and its usable addresses.
#[derive(Debug, Clone)]
pub struct Subnet {
    pub net: IpNet,
    pub usable: Option<Range>,
}

impl Subnet {
    pub fn new(net: IpNet) -> Self {
        let net = net.trunc();
        let (v6, network) = num(net.network());
        let (_, broadcast) = num(net.broadcast());
        let host_bits = net.max_prefix_len() - net.prefix_len();
        let usable = match (v6, host_bits) {
            (_, 0) | (_, 1) => Some(Range {
                v6,
                first: network,
                last: broadcast,
            }),
            (false, _) => Some(Range {
                v6,
                first: network + 1,
                last: broadcast - 1,
            }),
            (true, _) => Some(Range {
                v6,
                first: network + 1,
                last: broadcast,
            }),
        };
        Subnet { net, usable }
    }

    pub fn is_v6(&self) -> bool {
        matches!(self.net, IpNet::V6(_))
    }

    /// Usable hosts, exact for every prefix (an IPv6 /0 without its anycast address is
    /// 2^128 - 1, the most a u128 holds).
    pub fn size(&self) -> u128 {
        self.usable.map(|r| r.last - r.first + 1).unwrap_or(0)
    }

    /// The reserved ranges clipped to the usable range, merged and sorted.
    pub fn reserved_ranges(&self, reserved: &[Range]) -> Vec<(u128, u128)> {
        let Some(usable) = self.usable else {
            return Vec::new();
        };
        let mut clipped: Vec<(u128, u128)> = reserved
            .iter()
            .filter(|r| r.v6 == usable.v6 && r.last >= usable.first && r.first <= usable.last)
            .map(|r| (r.first.max(usable.first), r.last.min(usable.last)))
            .collect();
        clipped.sort();
        let mut merged: Vec<(u128, u128)> = Vec::new();
        for (a, b) in clipped {
            match merged.last_mut() {
                Some((_, end)) if a <= end.saturating_add(1) => *end = (*end).max(b),
                _ => merged.push((a, b)),
            }
        }
        merged
    }

    /// Reserved usable addresses: at most the size, so the sum of the disjoint ranges fits.
    pub fn reserved_count(&self, reserved: &[Range]) -> u128 {
        self.reserved_ranges(reserved)
            .iter()
            .map(|(a, b)| b - a + 1)
            .sum()
    }

    pub fn contains_usable(&self, ip: IpAddr) -> bool {
        let (v6, n) = num(ip);
        self.usable
            .is_some_and(|r| r.v6 == v6 && r.first <= n && n <= r.last)
    }
}

/// Hands out addresses of one subnet: lowest first, skipping reserved and taken ones.
pub struct Allocator {
    v6: bool,
    next: u128,
    last: u128,
    reserved: Vec<(u128, u128)>,
    taken: HashSet<u128>,
}

impl Allocator {
    pub fn new(subnet: &Subnet, reserved: &[Range]) -> Self {
        let usable = subnet.usable.unwrap_or(Range {
            v6: subnet.is_v6(),
            first: 1,
            last: 0,
        });
        Allocator {
            v6: usable.v6,
            next: usable.first,
            last: usable.last,
            reserved: subnet.reserved_ranges(reserved),
            taken: HashSet::new(),
        }
    }

    fn is_reserved(&self, n: u128) -> bool {
        self.reserved.iter().any(|(a, b)| *a <= n && n <= *b)
    }

    /// Keeps `ip` for a NIC when it is free; false when reserved or already given.
    pub fn keep(&mut self, ip: IpAddr) -> bool {
        let (_, n) = num(ip);
        !self.is_reserved(n) && self.taken.insert(n)
    }

    pub fn next_free(&mut self) -> Option<IpAddr> {
        while self.next <= self.last {
            let n = self.next;
            if let Some((_, end)) = self.reserved.iter().find(|(a, b)| *a <= n && n <= *b) {
                self.next = end.checked_add(1)?;
                continue;
            }
            self.next = self.next.saturating_add(1);
            if self.taken.insert(n) {
                return Some(addr(self.v6, n));
            }
            if n == u128::MAX {
                return None;
            }
        }
        None
    }
}

fn usable_ip(text: &str) -> Option<IpAddr> {
    let ip = common::untrusted::parse_ip(text)?;
    let skip = match ip {
        IpAddr::V4(a) => a.is_loopback() || a.is_link_local() || a.is_unspecified(),
        IpAddr::V6(a) => {
            a.is_loopback() || a.is_unspecified() || (a.segments()[0] & 0xffc0) == 0xfe80
        }
    };
    (!skip).then_some(ip)
}

/// A NIC's addresses, as counted.
pub fn nic_addresses(nic: &Nic) -> (Vec<Ipv4Addr>, Vec<Ipv6Addr>) {
    let mut v4: Vec<Ipv4Addr> = Vec::new();
    let mut v6: Vec<Ipv6Addr> = Vec::new();
    for text in nic.ipv4.iter().chain(&nic.ipv6) {
        match usable_ip(text) {
            Some(IpAddr::V4(a)) if !v4.contains(&a) => v4.push(a),
            Some(IpAddr::V6(a)) if !v6.contains(&a) => v6.push(a),
            _ => {}
        }
    }
    (v4, v6)
}

fn network_key(nic: &Nic) -> (String, Option<u32>) {
    match &nic.network {
        Some(n) => {
            let path = n.path.clone().unwrap_or_else(|| {
                let dc = n
                    .data_center
                    .as_ref()
                    .and_then(|d| d.name.clone())
                    .unwrap_or_default();
                format!("{dc}/{}", n.name.as_deref().unwrap_or(&n.id))
            });
            (path, n.vlan)
        }
        None => ("(no network)".into(), None),
    }
}

/// `vm`'s name for people: the engine's text with control characters escaped.
fn vm_label(vm: &VmRecord) -> String {
    format!("VM {} ({})", for_terminal(&vm.name), for_terminal(&vm.id))
}

/// The VM's fqdn when it is a DNS name. The guest agent reports it, so it may be anything: one
/// that is not a DNS name would write whatever it holds into nsupdate's input (a newline there
/// starts a command of the guest's choosing), so it is refused, with the VM named.
fn checked_fqdn(vm: &VmRecord, location: &str, refused: &mut Vec<String>) -> Option<String> {
    let fqdn = vm.fqdn.as_deref()?;
    match dns_name_error(fqdn) {
        None => Some(fqdn.to_string()),
        Some(why) => {
            refused.push(format!(
                "{location}: {}: fqdn {fqdn:?} is not a DNS name ({why}): no DNS change and no DHCP host name for it",
                vm_label(vm)
            ));
            None
        }
    }
}

/// The NIC's MAC address, normalised; one that does not parse is refused, with the VM named.
fn checked_mac(
    vm: &VmRecord,
    nic: &Nic,
    location: &str,
    refused: &mut Vec<String>,
) -> Option<String> {
    let mac = nic.mac.as_deref()?;
    let parsed = parse_mac(mac);
    if parsed.is_none() {
        refused.push(format!(
            "{location}: {} NIC {}: MAC {mac:?} is not a MAC address: no DHCP reservation for it",
            vm_label(vm),
            for_terminal(nic.name.as_deref().unwrap_or(&nic.id))
        ));
    }
    parsed
}

/// Where a NIC goes: a target's display string, or why it needs no planned address.
fn target_of(maps: &Mappings, nic: &Nic) -> String {
    let Some(network) = &nic.network else {
        return "unmapped".into();
    };
    let object = SourceObject {
        id: Some(network.id.as_str()),
        data_center: network.data_center.as_ref().and_then(|d| d.name.as_deref()),
        name: network.name.as_deref(),
    };
    match maps.network.lookup(&object) {
        Some(rule) => rule.destination.to_string(),
        None => "unmapped".into(),
    }
}

#[derive(Debug, Default)]
struct SourceStats {
    target: BTreeSet<String>,
    nics: u64,
    nics_with_ipv4: u64,
    ipv4: BTreeSet<Ipv4Addr>,
    ipv6: BTreeSet<Ipv6Addr>,
    nics_without_address: u64,
}

/// One NIC that needs a planned address.
#[derive(Debug, Clone)]
struct NicNeed {
    vm: String,
    vm_id: String,
    nic: String,
    nic_id: String,
    mac: Option<String>,
    source_network: String,
    target: String,
    old_ipv4: Vec<Ipv4Addr>,
    old_ipv6: Vec<Ipv6Addr>,
    fqdn: Option<String>,
}

fn parse_subnets(specs: &[String]) -> Result<BTreeMap<String, Vec<Subnet>>> {
    let mut targets: BTreeMap<String, Vec<Subnet>> = BTreeMap::new();
    for spec in specs {
        let bad = |e: String| Error::usage(format!("--subnet {spec:?}: {e}"));
        let (target, cidr) = spec
            .rsplit_once('=')
            .ok_or_else(|| bad("expected TARGET=CIDR".into()))?;
        let target = if target.contains(':') || !target.contains('/') {
            target.to_string()
        } else {
            format!("multus:{target}")
        };
        let parsed =
            <NetworkTarget as common::mapping::Destination>::parse(&target).map_err(bad)?;
        if !matches!(parsed, NetworkTarget::Multus { .. }) {
            return Err(bad(
                "only multus networks have subnets to plan (pod addresses are the cluster's)"
                    .into(),
            ));
        }
        let net: IpNet = cidr
            .trim()
            .parse()
            .map_err(|_| bad(format!("{cidr:?} is not a CIDR (like 10.20.0.0/24)")))?;
        check_network(&net).map_err(bad)?;
        let subnet = Subnet::new(net);
        let list = targets.entry(parsed.to_string()).or_default();
        if list.iter().any(|s| s.is_v6() == subnet.is_v6()) {
            return Err(bad(format!(
                "{} already has an IPv{} subnet",
                parsed,
                if subnet.is_v6() { 6 } else { 4 }
            )));
        }
        list.push(subnet);
    }
    Ok(targets)
}

/// A PTR owner name for an address.
pub fn reverse_name(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(a) => {
            let o = a.octets();
            format!("{}.{}.{}.{}.in-addr.arpa.", o[3], o[2], o[1], o[0])
        }
        IpAddr::V6(a) => {
            let hex: String = a.octets().iter().map(|b| format!("{b:02x}")).collect();
            let nibbles: Vec<String> = hex.chars().rev().map(|c| c.to_string()).collect();
            format!("{}.ip6.arpa.", nibbles.join("."))
        }
    }
}

fn absolute(fqdn: &str) -> String {
    if fqdn.ends_with('.') {
        fqdn.to_string()
    } else {
        format!("{fqdn}.")
    }
}

/// The DNS changes of allocation records for nsupdate(1); a record whose fqdn is not a DNS name
/// writes none (public for the fuzz target).
pub fn nsupdate_text(records: &[Map<String, Value>], ttl: u32) -> String {
    let mut text = String::new();
    for r in records {
        let (Some(fqdn), true) = (
            r.get("fqdn").and_then(Value::as_str),
            r.get("changed") == Some(&json!(true)),
        ) else {
            continue;
        };
        if !is_dns_name(fqdn) {
            continue; // refused when read; a DNS name is all nsupdate's input may carry
        }
        let name = absolute(fqdn);
        let olds = |key: &str| -> Vec<IpAddr> {
            r.get(key)
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|v| v.as_str()?.parse().ok())
                .collect()
        };
        for (new_key, old_key, rr) in [
            ("new_ipv4", "old_ipv4", "A"),
            ("new_ipv6", "old_ipv6", "AAAA"),
        ] {
            let Some(new) = r
                .get(new_key)
                .and_then(Value::as_str)
                .and_then(|s| s.parse::<IpAddr>().ok())
            else {
                continue;
            };
            text.push_str(&format!(
                "update delete {name} {rr}\nupdate add {name} {ttl} {rr} {new}\nsend\n"
            ));
            for old in olds(old_key) {
                if old != new {
                    text.push_str(&format!("update delete {} PTR\nsend\n", reverse_name(old)));
                }
            }
            text.push_str(&format!(
                "update add {} {ttl} PTR {name}\nsend\n",
                reverse_name(new)
            ));
        }
    }
    text
}

pub fn run(args: Args) -> Result<ExitCode> {
    args.verbosity.init_logging();
    if args.format == OutputFormat::Nsupdate && !args.allocate {
        return Err(Error::usage("--format nsupdate needs --allocate"));
    }
    let maps = Mappings::load(&[], &args.network_map, &args.map_file)?;
    let subnets = parse_subnets(&args.subnet)?;
    let reserved: Vec<Range> = args
        .reserve
        .iter()
        .map(|r| parse_range(r).map_err(|e| Error::usage(format!("--reserve {e}"))))
        .collect::<Result<_>>()?;

    let mut sources: BTreeMap<(String, Option<u32>), SourceStats> = BTreeMap::new();
    let mut needs: Vec<NicNeed> = Vec::new();
    let mut target_nics: BTreeMap<String, u64> = BTreeMap::new();
    let mut vms = 0u64;
    let mut refused: Vec<String> = Vec::new();
    Inputs::new(&args.io.inputs).for_each::<Value>(|value, location| {
        let vm: VmRecord =
            parse_vm_record(value).map_err(|e| Error::data(format!("{location}: {e}")))?;
        vms += 1;
        // The fqdn and MACs land in DNS and DHCP input with --allocate only: checked there.
        let allocate = args.allocate;
        let fqdn = allocate
            .then(|| checked_fqdn(&vm, location, &mut refused))
            .flatten();
        for nic in vm.nics() {
            for text in nic.ipv4.iter().chain(&nic.ipv6) {
                if common::untrusted::parse_ip(text).is_none() {
                    tracing::warn!(
                        "{location}: {} NIC {}: {text:?} is not an address, not counted",
                        vm_label(&vm),
                        for_terminal(nic.name.as_deref().unwrap_or(&nic.id))
                    );
                }
            }
            let key = network_key(nic);
            let target = target_of(&maps, nic);
            let (v4, v6) = nic_addresses(nic);
            let stats = sources.entry(key.clone()).or_default();
            stats.target.insert(target.clone());
            stats.nics += 1;
            stats.nics_with_ipv4 += u64::from(!v4.is_empty());
            let unaddressed = v4.is_empty() && v6.is_empty();
            stats.nics_without_address += u64::from(unaddressed);
            stats.ipv4.extend(v4.iter().copied());
            stats.ipv6.extend(v6.iter().copied());
            let needs_one = !unaddressed || args.unaddressed == Unaddressed::Count;
            if !needs_one || !target.starts_with("multus:") {
                continue;
            }
            *target_nics.entry(target.clone()).or_default() += 1;
            needs.push(NicNeed {
                vm: vm.name.clone(),
                vm_id: vm.id.clone(),
                nic: nic.name.clone().unwrap_or_else(|| nic.id.clone()),
                nic_id: nic.id.clone(),
                mac: if allocate {
                    checked_mac(&vm, nic, location, &mut refused)
                } else {
                    nic.mac.clone()
                },
                source_network: key.0.clone(),
                target,
                old_ipv4: v4,
                old_ipv6: v6,
                fqdn: fqdn.clone(),
            });
        }
        Ok(())
    })?;

    let (target_rows, shortfalls) = target_rows(&subnets, &target_nics, &reserved);
    let network_rows: Vec<Map<String, Value>> = sources
        .iter()
        .map(|((path, vlan), s)| {
            let row = json!({
                "report": "network", "network": path, "vlan": vlan,
                "target": s.target.iter().cloned().collect::<Vec<_>>().join(","),
                "nics": s.nics, "nics_with_ipv4": s.nics_with_ipv4, "ipv4_addresses": s.ipv4.len(),
                "ipv6_addresses": s.ipv6.len(), "nics_without_address": s.nics_without_address,
            });
            row.as_object().cloned().unwrap_or_default()
        })
        .collect();

    let mut out = Output::create(args.io.out.path())?;
    let name = out.name();
    let bytes = if args.allocate {
        let records = allocate(&mut needs, &subnets, &reserved);
        render_allocations(&records, args.format, args.ttl)?
    } else {
        render_report(&network_rows, &target_rows, args.format)?
    };
    out.write_all(&bytes)
        .map_err(|e| common::error::write_error(&name, &e))?;
    out.commit()?;
    for line in &shortfalls {
        eprintln!("ip-budget: shortfall: {line}");
    }
    for line in &refused {
        eprintln!("ip-budget: refused: {line}");
    }
    if !args.verbosity.quiet {
        let nics: u64 = sources.values().map(|s| s.nics).sum();
        eprintln!(
            "ip-budget: {vms} VMs, {nics} NICs on {} source networks, {} NICs need a planned address, {} shortfalls",
            sources.len(),
            needs.len(),
            shortfalls.len()
        );
    }
    Ok(if shortfalls.is_empty() && refused.is_empty() {
        ExitCode::Ok
    } else {
        ExitCode::Findings
    })
}

/// A target row of the report. Sizes are u128 so an IPv6 subnet's are exact: serde_json writes
/// them as numbers of any length, where its `Value` holds 64 bits at most.
#[derive(Debug, serde::Serialize)]
struct TargetRow {
    report: &'static str,
    target: String,
    subnet: Option<String>,
    family: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    size: Option<u128>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reserved: Option<u128>,
    needed: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    free: Option<u128>,
    #[serde(skip_serializing_if = "Option::is_none")]
    shortfall: Option<u128>,
}

impl TargetRow {
    fn jsonl(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// The row as CSV and table cells: a figure beyond 64 bits as its digits.
    fn cells(&self) -> Map<String, Value> {
        let figure = |n: Option<u128>| match n.map(u64::try_from) {
            None => Value::Null,
            Some(Ok(small)) => json!(small),
            Some(Err(_)) => Value::String(n.unwrap_or_default().to_string()),
        };
        let row = json!({
            "report": self.report, "target": self.target, "subnet": self.subnet,
            "family": self.family, "size": figure(self.size), "reserved": figure(self.reserved),
            "needed": self.needed, "free": figure(self.free), "shortfall": figure(self.shortfall),
        });
        row.as_object().cloned().unwrap_or_default()
    }
}

/// The target rows: one per target subnet, and one per target without a subnet; and the
/// shortfalls, one line each.
fn target_rows(
    subnets: &BTreeMap<String, Vec<Subnet>>,
    target_nics: &BTreeMap<String, u64>,
    reserved: &[Range],
) -> (Vec<TargetRow>, Vec<String>) {
    let mut rows = Vec::new();
    let mut shortfalls = Vec::new();
    let all_targets: BTreeSet<&String> = subnets.keys().chain(target_nics.keys()).collect();
    for target in all_targets {
        let needed = target_nics.get(target).copied().unwrap_or(0);
        let Some(list) = subnets.get(target) else {
            tracing::warn!(
                "{target}: {needed} NICs need an address, but no --subnet gives its subnet"
            );
            rows.push(TargetRow {
                report: "target",
                target: target.clone(),
                subnet: None,
                family: None,
                size: None,
                reserved: None,
                needed,
                free: None,
                shortfall: None,
            });
            continue;
        };
        for subnet in list {
            let size = subnet.size();
            let reserved_count = subnet.reserved_count(reserved);
            let free = size - reserved_count;
            let shortfall = u128::from(needed).saturating_sub(free);
            if shortfall > 0 {
                shortfalls.push(format!(
                    "{target} {}: {needed} needed, {free} free, short by {shortfall}",
                    subnet.net
                ));
            }
            rows.push(TargetRow {
                report: "target",
                target: target.clone(),
                subnet: Some(subnet.net.to_string()),
                family: Some(if subnet.is_v6() { "ipv6" } else { "ipv4" }),
                size: Some(size),
                reserved: Some(reserved_count),
                needed,
                free: Some(free),
                shortfall: Some(shortfall),
            });
        }
    }
    (rows, shortfalls)
}

fn allocate(
    needs: &mut [NicNeed],
    subnets: &BTreeMap<String, Vec<Subnet>>,
    reserved: &[Range],
) -> Vec<Map<String, Value>> {
    needs.sort_by(|a, b| {
        (&a.vm, &a.vm_id, &a.nic, &a.nic_id).cmp(&(&b.vm, &b.vm_id, &b.nic, &b.nic_id))
    });
    let mut allocators: BTreeMap<(String, bool), (Subnet, Allocator)> = BTreeMap::new();
    for (target, list) in subnets {
        for s in list {
            allocators.insert(
                (target.clone(), s.is_v6()),
                (s.clone(), Allocator::new(s, reserved)),
            );
        }
    }
    let mut new: Vec<[Option<IpAddr>; 2]> = vec![[None, None]; needs.len()];
    // First keep old addresses that already fit the target subnet, then hand out the rest.
    for (i, need) in needs.iter().enumerate() {
        for v6 in [false, true] {
            let Some((subnet, alloc)) = allocators.get_mut(&(need.target.clone(), v6)) else {
                continue;
            };
            let olds: Vec<IpAddr> = if v6 {
                need.old_ipv6.iter().map(|a| IpAddr::V6(*a)).collect()
            } else {
                need.old_ipv4.iter().map(|a| IpAddr::V4(*a)).collect()
            };
            if let Some(ip) = olds
                .into_iter()
                .find(|ip| subnet.contains_usable(*ip) && alloc.keep(*ip))
            {
                new[i][usize::from(v6)] = Some(ip);
            }
        }
    }
    for (i, need) in needs.iter().enumerate() {
        for v6 in [false, true] {
            if new[i][usize::from(v6)].is_some() {
                continue;
            }
            if let Some((_, alloc)) = allocators.get_mut(&(need.target.clone(), v6)) {
                new[i][usize::from(v6)] = alloc.next_free();
            }
        }
    }
    let mut fqdn_given: HashSet<String> = HashSet::new();
    needs
        .iter()
        .zip(new)
        .filter(|(need, _)| subnets.contains_key(&need.target))
        .map(|(need, [v4, v6])| {
            let fqdn = need
                .fqdn
                .clone()
                .filter(|_| fqdn_given.insert(need.vm_id.clone()));
            let changed = v4.is_some_and(|ip| !need.old_ipv4.iter().any(|o| IpAddr::V4(*o) == ip))
                || v6.is_some_and(|ip| !need.old_ipv6.iter().any(|o| IpAddr::V6(*o) == ip));
            let row = json!({
                "vm": need.vm, "vm_id": need.vm_id, "nic": need.nic, "mac": need.mac,
                "source_network": need.source_network, "target": need.target,
                "old_ipv4": need.old_ipv4.iter().map(|a| a.to_string()).collect::<Vec<_>>(),
                "old_ipv6": need.old_ipv6.iter().map(|a| a.to_string()).collect::<Vec<_>>(),
                "new_ipv4": v4.map(|a| a.to_string()), "new_ipv6": v6.map(|a| a.to_string()),
                "changed": changed, "fqdn": fqdn,
            });
            row.as_object().cloned().unwrap_or_default()
        })
        .collect()
}

fn render_allocations(
    records: &[Map<String, Value>],
    format: OutputFormat,
    ttl: u32,
) -> Result<Vec<u8>> {
    Ok(match format {
        OutputFormat::Jsonl => records
            .iter()
            .map(|r| format!("{}\n", Value::Object(r.clone())))
            .collect::<String>()
            .into_bytes(),
        OutputFormat::Nsupdate => nsupdate_text(records, ttl).into_bytes(),
        OutputFormat::Csv | OutputFormat::Table => {
            let with_host: Vec<Map<String, Value>> = records
                .iter()
                .map(|r| {
                    let mut r = r.clone();
                    let host = r
                        .get("fqdn")
                        .filter(|v| !v.is_null())
                        .or(r.get("vm"))
                        .cloned()
                        .unwrap_or(Value::Null);
                    r.insert("hostname".into(), host);
                    r
                })
                .collect();
            let columns: Vec<Column> = [
                "mac", "new_ipv4", "new_ipv6", "hostname", "vm", "nic", "target", "old_ipv4",
                "changed",
            ]
            .into_iter()
            .map(Column::text)
            .collect();
            if format == OutputFormat::Csv {
                csv_bytes(&columns, &with_host.iter().collect::<Vec<_>>())?
            } else {
                table_string(&columns, &with_host, None).into_bytes()
            }
        }
    })
}

fn render_report(
    networks: &[Map<String, Value>],
    target_rows: &[TargetRow],
    format: OutputFormat,
) -> Result<Vec<u8>> {
    let targets: Vec<Map<String, Value>> = target_rows.iter().map(TargetRow::cells).collect();
    let network_columns: Vec<Column> = vec![
        Column::text("network"),
        Column::number("vlan"),
        Column::text("target"),
        Column::number("nics"),
        Column::number("nics_with_ipv4"),
        Column::number("ipv4_addresses"),
        Column::number("ipv6_addresses"),
        Column::number("nics_without_address"),
    ];
    let target_columns: Vec<Column> = vec![
        Column::text("target"),
        Column::text("subnet"),
        Column::number("size"),
        Column::number("reserved"),
        Column::number("needed"),
        Column::number("free"),
        Column::number("shortfall"),
    ];
    Ok(match format {
        OutputFormat::Jsonl => networks
            .iter()
            .map(|r| Value::Object(r.clone()).to_string())
            .chain(target_rows.iter().map(TargetRow::jsonl))
            .map(|line| format!("{line}\n"))
            .collect::<String>()
            .into_bytes(),
        OutputFormat::Csv => {
            let mut bytes = csv_bytes(&network_columns, &networks.iter().collect::<Vec<_>>())?;
            bytes.push(b'\n');
            bytes.extend(csv_bytes(
                &target_columns,
                &targets.iter().collect::<Vec<_>>(),
            )?);
            bytes
        }
        OutputFormat::Table => {
            let mut text = table_string(&network_columns, networks, None);
            text.push('\n');
            text.push_str(&table_string(&target_columns, &targets, None));
            text.into_bytes()
        }
        OutputFormat::Nsupdate => unreachable!("checked in run"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_of_subnets() {
        let s = |t: &str| Subnet::new(t.parse().unwrap()).size();
        assert_eq!(s("10.0.0.0/24"), 254);
        assert_eq!(s("10.0.0.0/31"), 2);
        assert_eq!(s("10.0.0.7/32"), 1);
        assert_eq!(s("fd00::/120"), 255);
        assert_eq!(s("fd00::/64"), u128::from(u64::MAX));
        assert_eq!(s("fd00::/63"), (1u128 << 65) - 1);
        assert_eq!(s("::/0"), u128::MAX);
    }

    #[test]
    fn ranges_and_reservations() {
        let subnet = Subnet::new("10.0.0.0/24".parse().unwrap());
        let reserved: Vec<Range> = [
            "10.0.0.1",
            "10.0.0.0/30",
            "10.0.0.100-10.0.0.149",
            "10.0.1.0/24",
            "fd00::1",
        ]
        .iter()
        .map(|r| parse_range(r).unwrap())
        .collect();
        assert_eq!(subnet.reserved_count(&reserved), 3 + 50);
        let mut alloc = Allocator::new(&subnet, &reserved);
        assert_eq!(alloc.next_free(), Some("10.0.0.4".parse().unwrap()));
        assert!(!alloc.keep("10.0.0.120".parse().unwrap()));
        assert!(alloc.keep("10.0.0.5".parse().unwrap()));
        assert_eq!(alloc.next_free(), Some("10.0.0.6".parse().unwrap()));
        assert!(parse_range("10.0.0.9-10.0.0.1").is_err());
        assert!(parse_range("10.0.0.1-fd00::1").is_err());
        assert!(parse_range("nope").is_err());
    }

    #[test]
    fn reverse_names() {
        assert_eq!(
            reverse_name("192.168.1.4".parse().unwrap()),
            "4.1.168.192.in-addr.arpa."
        );
        assert!(reverse_name("fd00::1".parse().unwrap()).starts_with("1.0.0.0.0.0.0.0"));
        assert!(reverse_name("fd00::1".parse().unwrap()).ends_with(".0.0.d.f.ip6.arpa."));
    }
}
