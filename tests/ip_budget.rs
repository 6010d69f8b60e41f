//! ip-budget on the demo world (address counts and shortfalls computed from the world file), the
//! allocation (binary and property tests), renderings and errors.

mod pipeline;
mod support;

use ip_budget::{Allocator, Range, Subnet};
use pipeline::*;
use proptest::prelude::*;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::net::IpAddr;

const IB: &str = env!("CARGO_BIN_EXE_ip-budget");

#[derive(Default, Debug, PartialEq)]
struct NetExpect {
    vlan: Option<u64>,
    nics: u64,
    nics_with_ipv4: u64,
    ipv4: BTreeSet<String>,
    ipv6: BTreeSet<String>,
    without: u64,
}

fn expected_networks() -> BTreeMap<String, NetExpect> {
    let profiles = by_id("vnic_profiles");
    let networks = by_id("networks");
    let dcs = by_id("data_centers");
    let mut out: BTreeMap<String, NetExpect> = BTreeMap::new();
    for vm in world()["vms"].as_array().unwrap() {
        for nic in vm["nics"].as_array().unwrap() {
            let (path, vlan) = match nic["vnic_profile"].as_str() {
                Some(p) => {
                    let net = networks[profiles[p]["network"].as_str().unwrap()];
                    let dc = dcs[net["data_center"].as_str().unwrap()]["name"]
                        .as_str()
                        .unwrap();
                    (
                        format!("{dc}/{}", net["name"].as_str().unwrap()),
                        net["vlan"].as_u64(),
                    )
                }
                None => ("(no network)".to_string(), None),
            };
            let e = out.entry(path).or_default();
            e.vlan = vlan;
            e.nics += 1;
            let ips: Vec<&Value> = nic["reported_ips"]
                .as_array()
                .map(|a| a.iter().collect())
                .unwrap_or_default();
            let v4: Vec<String> = ips
                .iter()
                .filter(|i| {
                    i["version"] == "v4" && !i["address"].as_str().unwrap().starts_with("169.254.")
                })
                .map(|i| i["address"].as_str().unwrap().to_string())
                .collect();
            let v6: Vec<String> = ips
                .iter()
                .filter(|i| {
                    i["version"] == "v6"
                        && !i["address"]
                            .as_str()
                            .unwrap()
                            .to_lowercase()
                            .starts_with("fe80:")
                })
                .map(|i| i["address"].as_str().unwrap().to_string())
                .collect();
            e.nics_with_ipv4 += u64::from(!v4.is_empty());
            e.without += u64::from(v4.is_empty() && v6.is_empty());
            e.ipv4.extend(v4);
            e.ipv6.extend(v6);
        }
    }
    out
}

fn report_args<'a>(extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "--network-map",
        "*=pod",
        "--network-map",
        "RDU/vlan202=multus:net/vlan202",
        "--subnet",
        "net/vlan202=10.20.2.0/27",
        "--reserve",
        "10.20.2.1",
        "--reserve",
        "10.20.2.24-10.20.2.40",
    ];
    args.extend(extra);
    args
}

#[test]
fn demo_world_counts_and_shortfalls_match_the_world_file() {
    let expected = expected_networks();
    let records = demo_records().to_str().unwrap();
    let out = run(IB, &report_args(&[records]), b"");
    let rows = lines(&out);
    let networks: BTreeMap<String, &Value> = rows
        .iter()
        .filter(|r| r["report"] == "network")
        .map(|r| (r["network"].as_str().unwrap().to_string(), r))
        .collect();
    assert_eq!(
        networks.keys().collect::<Vec<_>>(),
        expected.keys().collect::<Vec<_>>()
    );
    for (path, e) in &expected {
        let r = networks[path];
        assert_eq!(r["vlan"].as_u64(), e.vlan, "{path}");
        assert_eq!(r["nics"], e.nics, "{path}");
        assert_eq!(r["nics_with_ipv4"], e.nics_with_ipv4, "{path}");
        assert_eq!(r["ipv4_addresses"], e.ipv4.len(), "{path}");
        assert_eq!(r["ipv6_addresses"], e.ipv6.len(), "{path}");
        assert_eq!(r["nics_without_address"], e.without, "{path}");
    }
    // 10.20.2.0/27: 30 hosts; reserved .1 and .24-.30 (the part of .24-.40 inside): 8; free 22.
    let needed = expected["RDU/vlan202"].nics;
    let target: Vec<&Value> = rows.iter().filter(|r| r["report"] == "target").collect();
    assert_eq!(target.len(), 1);
    let t = target[0];
    assert_eq!(
        (
            t["size"].as_u64(),
            t["reserved"].as_u64(),
            t["free"].as_u64()
        ),
        (Some(30), Some(8), Some(22))
    );
    assert_eq!(t["needed"], needed);
    let shortfall = needed.saturating_sub(22);
    assert_eq!(t["shortfall"], shortfall);
    assert_eq!(
        code(&out),
        if shortfall > 0 { 1 } else { 0 },
        "{}",
        stderr(&out)
    );

    // With a bigger subnet there is no shortfall; a smaller one certainly falls short.
    let out = run(
        IB,
        &[
            "--network-map",
            "RDU/vlan202=multus:net/vlan202",
            "--subnet",
            "net/vlan202=10.20.2.0/24",
            records,
        ],
        b"",
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let out = run(
        IB,
        &[
            "--network-map",
            "RDU/vlan202=multus:net/vlan202",
            "--subnet",
            "net/vlan202=10.20.2.0/30",
            records,
        ],
        b"",
    );
    assert_eq!(code(&out), 1);
    assert!(
        stderr(&out).contains(&format!(
            "multus:net/vlan202 10.20.2.0/30: {needed} needed, 2 free, short by {}",
            needed - 2
        )),
        "{}",
        stderr(&out)
    );
}

#[test]
fn demo_world_allocation_is_unique_in_subnet_unreserved_and_deterministic() {
    let records = demo_records().to_str().unwrap();
    let args = [
        "--allocate",
        "--network-map",
        "*=pod",
        "--network-map",
        "vlan201=multus:net/vlan201",
        "--subnet",
        "net/vlan201=10.30.0.0/24",
        "--subnet",
        "net/vlan201=fd00:30::/64",
        "--reserve",
        "10.30.0.1-10.30.0.10",
        records,
    ];
    let out = run(IB, &args, b"");
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let rows = lines(&out);
    let expected = expected_networks();
    assert_eq!(
        rows.len() as u64,
        expected["RDU/vlan201"].nics + expected["TLV2/vlan201"].nics
    );
    let mut seen = HashSet::new();
    let subnet: ip_budget::ipnet::IpNet = "10.30.0.0/24".parse().unwrap();
    for r in &rows {
        let ip: IpAddr = r["new_ipv4"].as_str().unwrap().parse().unwrap();
        assert!(subnet.contains(&ip) && ip != subnet.network() && ip != subnet.broadcast());
        let IpAddr::V4(v4) = ip else { panic!() };
        assert!(v4.octets()[3] > 10, "reserved {ip}");
        assert!(seen.insert(ip), "{ip} twice");
        assert!(r["new_ipv6"].as_str().unwrap().starts_with("fd00:30::"));
        assert!(r["mac"].is_string());
    }
    let order: Vec<(String, String)> = rows
        .iter()
        .map(|r| {
            (
                r["vm"].as_str().unwrap().into(),
                r["nic"].as_str().unwrap().into(),
            )
        })
        .collect();
    let mut sorted = order.clone();
    sorted.sort();
    assert_eq!(order, sorted, "NICs in order of VM name, then NIC name");
    // The same input in another order gives the same allocation.
    let text = std::fs::read_to_string(demo_records()).unwrap();
    let mut reversed: Vec<&str> = text.lines().collect();
    reversed.reverse();
    let mut stdin_args = args.to_vec();
    stdin_args.pop();
    let again = run(IB, &stdin_args, (reversed.join("\n") + "\n").as_bytes());
    assert_eq!(lines(&again), rows);

    let mut csv_args = args.to_vec();
    csv_args.splice(0..0, ["--format", "csv"]);
    let csv = String::from_utf8(run(IB, &csv_args, b"").stdout).unwrap();
    assert!(
        csv.starts_with("mac,new_ipv4,new_ipv6,hostname,vm,nic,target,old_ipv4,changed\n"),
        "{csv}"
    );
    let mut ns_args = args.to_vec();
    ns_args.splice(0..0, ["--format", "nsupdate"]);
    let ns = String::from_utf8(run(IB, &ns_args, b"").stdout).unwrap();
    let with_fqdn = rows
        .iter()
        .find(|r| r["fqdn"].is_string() && r["changed"] == true)
        .unwrap();
    let fqdn = with_fqdn["fqdn"].as_str().unwrap();
    assert!(
        ns.contains(&format!(
            "update delete {fqdn}. A\nupdate add {fqdn}. 3600 A {}\nsend\n",
            with_fqdn["new_ipv4"].as_str().unwrap()
        )),
        "{ns}"
    );
    assert!(ns.contains("in-addr.arpa. PTR") && ns.contains("ip6.arpa. 3600 PTR"));
}

#[test]
fn errors_are_one_line_with_exit_codes_and_no_output_file() {
    let dir = tempfile::tempdir().unwrap();
    let out_file = dir.path().join("ip.jsonl");
    let o = out_file.to_str().unwrap();
    assert_fails(
        &run(IB, &["--subnet", "net/a=10.0.0.0/33"], b""),
        2,
        "ip-budget: --subnet \"net/a=10.0.0.0/33\": ",
    );
    assert_fails(
        &run(IB, &["--subnet", "pod=10.0.0.0/24"], b""),
        2,
        "ip-budget: --subnet \"pod=10.0.0.0/24\": only multus",
    );
    assert_fails(
        &run(IB, &["--reserve", "10.0.0.9-10.0.0.1"], b""),
        2,
        "ip-budget: --reserve \"10.0.0.9-10.0.0.1\"",
    );
    assert_fails(
        &run(IB, &["--network-map", "a=bridge"], b""),
        2,
        "ip-budget: --network-map \"a=bridge\": bad network destination",
    );
    assert_fails(
        &run(IB, &["--format", "nsupdate"], b""),
        2,
        "ip-budget: --format nsupdate needs --allocate",
    );
    let good = std::fs::read_to_string(fixture("small.jsonl")).unwrap();
    let bad = format!(
        "{}\n{{\"schema\":2,\"id\":\"x\",\"name\":\"n\"}}\n",
        good.lines().next().unwrap()
    );
    assert_fails(
        &run(IB, &["-o", o], bad.as_bytes()),
        65,
        "ip-budget: stdin:2: VM record n has schema 2",
    );
    assert!(!out_file.exists());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]
    #[test]
    fn allocated_addresses_are_unique_inside_and_unreserved(
        base in any::<u32>(),
        prefix in 22u8..=32,
        reserves in proptest::collection::vec((0u32..1200, 0u32..40), 0..6),
    ) {
        let net = ip_budget::ipnet::Ipv4Net::new(std::net::Ipv4Addr::from(base), prefix).unwrap().trunc();
        let subnet = Subnet::new(ip_budget::ipnet::IpNet::V4(net));
        let start = u32::from(net.network());
        let reserved: Vec<Range> = reserves
            .iter()
            .map(|(off, len)| {
                let first = start.saturating_add(*off);
                Range { v6: false, first: u128::from(first), last: u128::from(first.saturating_add(*len)) }
            })
            .collect();
        let mut alloc = Allocator::new(&subnet, &reserved);
        let mut got = HashSet::new();
        while let Some(ip) = alloc.next_free() {
            let IpAddr::V4(v4) = ip else { panic!("v4 subnet gave {ip}") };
            prop_assert!(net.contains(&v4));
            if prefix < 31 {
                prop_assert!(v4 != net.network() && v4 != net.broadcast());
            }
            let n = u128::from(u32::from(v4));
            prop_assert!(!reserved.iter().any(|r| r.first <= n && n <= r.last), "{v4} is reserved");
            prop_assert!(got.insert(v4), "{v4} twice");
        }
        // Every address of the subnet is handed out once, by brute force over the subnet: all but
        // the network and broadcast addresses (both usable in a /31, RFC 3021, and the one of a /32),
        // less the reserved ones.
        let first = u32::from(net.network());
        let last = u32::from(net.broadcast());
        let expected: HashSet<std::net::Ipv4Addr> = (first..=last)
            .filter(|n| prefix >= 31 || (*n != first && *n != last))
            .filter(|n| !reserves.iter().any(|(off, len)| {
                let from = first.saturating_add(*off);
                from <= *n && *n <= from.saturating_add(*len)
            }))
            .map(std::net::Ipv4Addr::from)
            .collect();
        prop_assert_eq!(got, expected);
    }
}
