//! The addresses section: per target subnet (ip-budget's target rows) the addresses reserved,
//! needed and free, shortfalls highlighted; targets without a subnet; ip-budget --allocate's
//! records counted per target.

use crate::bars::{self, Arrange, Chart, Item, Segment};
use crate::inputs::AddressRow;
use serde::Serialize;
use std::collections::BTreeMap;

#[derive(Debug, Serialize)]
pub struct Addresses {
    pub subnets: Vec<Subnet>,
    /// Targets that need addresses but were given no subnet: (target, needed).
    pub without_subnet: Vec<(String, u64)>,
    pub shortfalls: usize,
    pub chart: Option<Chart>,
    pub allocations: Vec<Allocation>,
}

#[derive(Debug, Serialize)]
pub struct Subnet {
    pub target: String,
    pub subnet: String,
    pub size: u64,
    pub reserved: u64,
    pub needed: u64,
    pub free: u64,
    pub shortfall: u64,
}

#[derive(Debug, Default, Serialize)]
pub struct Allocation {
    pub target: String,
    pub nics: u64,
    pub changed: u64,
    pub kept: u64,
}

pub fn build(rows: &[AddressRow]) -> Addresses {
    let mut subnets = Vec::new();
    let mut without_subnet = Vec::new();
    let mut allocations: BTreeMap<String, Allocation> = BTreeMap::new();
    for row in rows {
        let target = row.target.clone().unwrap_or_default();
        if row.vm.is_some() {
            let a = allocations.entry(target.clone()).or_default();
            a.target = target;
            a.nics += 1;
            if row.changed == Some(true) {
                a.changed += 1;
            } else {
                a.kept += 1;
            }
            continue;
        }
        if row.report.as_deref() != Some("target") {
            continue;
        }
        match &row.subnet {
            Some(subnet) => subnets.push(Subnet {
                target,
                subnet: subnet.clone(),
                size: row.size.unwrap_or(0),
                reserved: row.reserved.unwrap_or(0),
                needed: row.needed.unwrap_or(0),
                free: row.free.unwrap_or(0),
                shortfall: row.shortfall.unwrap_or(0),
            }),
            None => without_subnet.push((target, row.needed.unwrap_or(0))),
        }
    }
    Addresses {
        shortfalls: subnets.iter().filter(|s| s.shortfall > 0).count(),
        chart: (!subnets.is_empty()).then(|| chart(&subnets)),
        subnets,
        without_subnet,
        allocations: allocations.into_values().collect(),
    }
}

/// One stacked bar per subnet, in percent of its usable addresses (a /22 and a /28 side by
/// side stay readable): reserved, needed (within the free addresses), still free, and the
/// shortfall beyond the subnet's end; the marker is the subnet's size (100%).
fn chart(subnets: &[Subnet]) -> Chart {
    let items = subnets
        .iter()
        .map(|s| {
            let placed = s.needed.min(s.free);
            let parts = [
                ("reserved", s.reserved, "reserved"),
                ("needed", placed, "needed"),
                ("free", s.free - placed, "still free"),
                ("shortfall", s.shortfall, "SHORT"),
            ];
            let percent = |n: u64| 100.0 * n as f64 / s.size.max(1) as f64;
            Item {
                label: format!("{} {}", s.target, s.subnet),
                segments: parts
                    .into_iter()
                    .filter(|(_, n, _)| *n > 0)
                    .map(|(class, n, what)| Segment {
                        class,
                        value: percent(n),
                        title: format!("{} {}: {what} {n} of {}", s.target, s.subnet, s.size),
                    })
                    .collect(),
                arrange: Arrange::Stacked,
                marker: Some((100.0, format!("{} usable addresses", s.size))),
                value: if s.shortfall > 0 {
                    format!(
                        "{} needed, {} free: SHORT {}",
                        s.needed, s.free, s.shortfall
                    )
                } else {
                    format!("{} needed, {} free", s.needed, s.free)
                },
            }
        })
        .collect();
    bars::layout(
        "chart-addresses",
        "Addresses per target subnet, in percent of its usable addresses",
        items,
        &[
            ("reserved", "reserved"),
            ("needed", "needed"),
            ("free", "still free"),
            ("shortfall", "short"),
        ],
        1.0,
        |v| format!("{}%", v.round() as u64),
    )
}
