//! The preflight section: plan-gen's findings grouped by category (Critical first) and concern,
//! with the VMs each concerns, and the VMs the Critical ones block.

use crate::bars::{self, Arrange, Chart, Item, Segment};
use crate::inputs::Finding;
use serde::Serialize;
use std::collections::BTreeMap;

/// VM names shown per concern before "and N more".
const NAMES_SHOWN: usize = 12;

#[derive(Debug, Serialize)]
pub struct Preflight {
    pub findings: usize,
    pub vms: usize,
    pub categories: Vec<Category>,
    pub blocked: Vec<Blocked>,
    pub chart: Chart,
}

#[derive(Debug, Serialize)]
pub struct Category {
    pub name: String,
    pub class: String,
    pub findings: usize,
    pub concerns: Vec<Concern>,
}

#[derive(Debug, Serialize)]
pub struct Concern {
    pub id: String,
    pub label: String,
    pub vms: usize,
    pub names: Vec<String>,
    pub more: usize,
}

#[derive(Debug, Serialize)]
pub struct Blocked {
    pub vm: String,
    pub namespace: String,
    pub reasons: Vec<String>,
}

/// Forklift's categories, most severe first; any other sorts after them.
fn rank(category: &str) -> usize {
    ["Critical", "Error", "Warning", "Advisory", "Information"]
        .iter()
        .position(|c| *c == category)
        .unwrap_or(5)
}

/// Concern id -> (label, VM names in input order, each once).
type Concerns<'a> = BTreeMap<&'a str, (&'a str, Vec<&'a str>)>;

pub fn build(findings: &[Finding]) -> Preflight {
    // (rank, category) -> its concerns
    let mut grouped: BTreeMap<(usize, &str), Concerns> = BTreeMap::new();
    let mut blocked: BTreeMap<(&str, &str), Vec<String>> = BTreeMap::new();
    for f in findings {
        let concern = grouped
            .entry((rank(&f.category), &f.category))
            .or_default()
            .entry(&f.concern_id)
            .or_insert((f.label.as_deref().unwrap_or(""), Vec::new()));
        if !concern.1.contains(&f.vm_name.as_str()) {
            concern.1.push(&f.vm_name);
        }
        if f.left_out && f.category == "Critical" {
            let why = match &f.assessment {
                Some(a) => format!("{}: {a}", f.concern_id),
                None => f.concern_id.clone(),
            };
            blocked
                .entry((&f.vm_name, f.target_namespace.as_deref().unwrap_or("")))
                .or_default()
                .push(why);
        }
    }
    let categories: Vec<Category> = grouped
        .into_iter()
        .map(|((_, name), concerns)| category(name, concerns))
        .collect();
    let mut vms: Vec<&str> = findings.iter().map(|f| f.vm_name.as_str()).collect();
    vms.sort_unstable();
    vms.dedup();
    Preflight {
        findings: findings.len(),
        vms: vms.len(),
        chart: chart(&categories),
        categories,
        blocked: blocked
            .into_iter()
            .map(|((vm, namespace), reasons)| Blocked {
                vm: vm.into(),
                namespace: namespace.into(),
                reasons,
            })
            .collect(),
    }
}

fn category(name: &str, concerns: Concerns) -> Category {
    let mut concerns: Vec<Concern> = concerns
        .into_iter()
        .map(|(id, (label, names))| Concern {
            id: id.into(),
            label: label.into(),
            vms: names.len(),
            more: names.len().saturating_sub(NAMES_SHOWN),
            names: names
                .iter()
                .take(NAMES_SHOWN)
                .map(|n| n.to_string())
                .collect(),
        })
        .collect();
    concerns.sort_by(|a, b| b.vms.cmp(&a.vms).then(a.id.cmp(&b.id)));
    Category {
        name: name.into(),
        class: name.to_ascii_lowercase(),
        findings: concerns.iter().map(|c| c.vms).sum(),
        concerns,
    }
}

/// One bar per concern: the VMs it concerns, coloured by category.
fn chart(categories: &[Category]) -> Chart {
    let items = categories
        .iter()
        .flat_map(|cat| {
            cat.concerns.iter().map(move |c| Item {
                label: c.id.clone(),
                segments: vec![Segment {
                    class: category_class(&cat.name),
                    value: c.vms as f64,
                    title: format!("{} {}: {} VM(s)", cat.name, c.id, c.vms),
                }],
                arrange: Arrange::Stacked,
                marker: None,
                value: format!("{} VM(s)", c.vms),
            })
        })
        .collect();
    bars::layout(
        "chart-preflight",
        "VMs per preflight concern, by category",
        items,
        &[
            ("critical", "Critical"),
            ("warning", "Warning"),
            ("information", "Information"),
        ],
        1.0,
        |v| format!("{}", v.round() as u64),
    )
}

fn category_class(category: &str) -> &'static str {
    match category {
        "Critical" | "Error" => "critical",
        "Warning" | "Advisory" => "warning",
        _ => "information",
    }
}
