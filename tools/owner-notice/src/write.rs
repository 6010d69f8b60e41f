//! Writing the notices: every notice is rendered before the first file is written (a bad
//! template or value replaces nothing), then each file is written atomically (common's output:
//! a temporary file renamed over it). The summary on stderr names every owner without an address.

use crate::inputs::Vm;
use crate::notice::{Notice, VmNotice, Warnings};
use crate::render::Renderer;
use crate::{Args, Format, mail};
use common::format::{Column, csv_bytes};
use common::output::Output;
use common::untrusted::for_terminal;
use common::{Error, ExitCode, Result};
use serde_json::{Map, Value, json};
use std::io::Write;
use std::path::Path;

/// Writes the notices as `args.format` says; returns how many were written.
pub fn write(
    args: &Args,
    renderer: &Renderer,
    envelope: Option<&mail::Envelope>,
    notices: &[Notice],
) -> Result<usize> {
    match args.format {
        Format::Csv => {
            let bytes = csv(notices)?;
            let mut out = Output::create(args.output.as_deref())?;
            let name = out.name();
            out.write_all(&bytes)
                .map_err(|e| common::error::write_error(&name, &e))?;
            out.commit()?;
            Ok(notices.len())
        }
        Format::Markdown => {
            let mut files = Vec::new();
            for n in notices {
                files.push((format!("{}.md", n.file), renderer.notice(n)?.into_bytes()));
            }
            write_files(args.output.as_deref(), &files)
        }
        Format::Eml => {
            let envelope = envelope.ok_or_else(|| Error::usage("--format eml needs --from"))?;
            let mut files = Vec::new();
            for n in notices {
                let Some(address) = &n.owner.address else {
                    continue;
                };
                let body = renderer.notice(n)?;
                let subject = renderer.subject(n)?;
                let key = [n.owner.kind, n.owner.principal.as_str()];
                let bytes = mail::message(
                    envelope,
                    (&n.owner.display_name, address),
                    &subject,
                    body,
                    &key,
                )
                .map_err(|e| e.context(format!("{} {}", n.owner.kind, n.owner.principal)))?;
                files.push((format!("{}.eml", n.file), bytes));
            }
            write_files(args.output.as_deref(), &files)
        }
    }
}

/// Each (name, bytes) into `dir` (created when missing), each file atomically.
fn write_files(dir: Option<&Path>, files: &[(String, Vec<u8>)]) -> Result<usize> {
    let dir = dir.ok_or_else(|| Error::usage("give the directory of the notices with -o DIR"))?;
    std::fs::create_dir_all(dir).map_err(|e| Error::io(format!("{}: {e}", dir.display())))?;
    for (name, bytes) in files {
        let path = dir.join(name);
        let mut out = Output::create(Some(&path))?;
        out.write_all(bytes)
            .map_err(|e| common::error::write_error(&path.display().to_string(), &e))?;
        out.commit()?;
    }
    Ok(files.len())
}

const CSV_COLUMNS: [&str; 17] = [
    "owner_kind",
    "owner",
    "principal",
    "display_name",
    "address",
    "vm",
    "namespace",
    "target_name",
    "plan",
    "migration",
    "start",
    "end",
    "downtime",
    "status",
    "network",
    "dns",
    "reasons",
];

/// One row per owner and VM (left-out VMs too), through common's CSV writer, which neutralises
/// cells a spreadsheet would run as formulas.
fn csv(notices: &[Notice]) -> Result<Vec<u8>> {
    let mut rows: Vec<Map<String, Value>> = Vec::new();
    for n in notices {
        let owner = json!({
            "owner_kind": n.owner.kind, "owner": n.owner.name, "principal": n.owner.principal,
            "display_name": n.owner.display_name, "address": n.owner.address,
        });
        for vm in &n.vms {
            let mut row = owner.as_object().cloned().unwrap_or_default();
            row.extend(vm_row(vm, n.after));
            rows.push(row);
        }
        for vm in &n.left_out {
            let mut row = owner.as_object().cloned().unwrap_or_default();
            row.insert("vm".into(), Value::from(vm.name.clone()));
            row.insert("namespace".into(), Value::from(vm.namespace.clone()));
            row.insert("status".into(), Value::from("left out"));
            row.insert("reasons".into(), Value::from(vm.reasons.join("; ")));
            rows.push(row);
        }
    }
    let columns: Vec<Column> = CSV_COLUMNS.iter().map(|c| Column::text(*c)).collect();
    let refs: Vec<&Map<String, Value>> = rows.iter().collect();
    csv_bytes(&columns, &refs)
}

fn vm_row(vm: &VmNotice, after: bool) -> Map<String, Value> {
    let status = match (after, vm.result, &vm.blocked, &vm.start) {
        (true, Some(result), _, _) => result.to_string(),
        (_, _, Some(_), _) => "blocked".into(),
        (_, _, _, Some(_)) => "scheduled".into(),
        _ => "not scheduled".into(),
    };
    let network: Vec<String> = vm
        .nics
        .iter()
        .map(|nic| {
            let vlan = nic
                .old_vlan
                .map(|v| format!(" (VLAN {v})"))
                .unwrap_or_default();
            format!(
                "{}: {}{vlan} {} -> {} {}{}",
                nic.nic,
                nic.old_network.as_deref().unwrap_or(""),
                nic.old_addresses.join(","),
                nic.new_network.as_deref().unwrap_or(""),
                nic.new_addresses.join(","),
                if nic.changed { " (changed)" } else { "" }
            )
        })
        .collect();
    let dns: Vec<String> = vm
        .dns
        .iter()
        .map(|d| format!("{}: {} -> {}", d.fqdn, d.old.join(","), d.new.join(",")))
        .collect();
    let mut reasons: Vec<String> = vm.blocked.iter().cloned().collect();
    reasons.extend(vm.error.iter().cloned());
    reasons.extend(
        vm.failed_checks
            .iter()
            .map(|c| format!("{}: {}", c.check, c.message)),
    );
    let row = json!({
        "vm": vm.name, "namespace": vm.namespace, "target_name": vm.target_name, "plan": vm.plan,
        "migration": vm.migration, "start": vm.start, "end": vm.end, "downtime": vm.downtime,
        "status": status, "network": network.join("; "), "dns": dns.join("; "),
        "reasons": reasons.join("; "),
    });
    row.as_object().cloned().unwrap_or_default()
}

/// The summary on stderr and the exit code: 1 when an owner has no address.
pub fn summary(
    args: &Args,
    notices: &[Notice],
    warnings: &Warnings,
    vms: &[Vm],
    written: usize,
) -> ExitCode {
    for why in &warnings.bad_addresses {
        eprintln!("owner-notice: warning: {}", for_terminal(why));
    }
    if !warnings.unowned.is_empty() && !args.verbosity.quiet {
        let names: Vec<String> = warnings
            .unowned
            .iter()
            .map(|n| for_terminal(n).into_owned())
            .collect();
        eprintln!(
            "owner-notice: {} VM(s) without an owner, in no notice: {}",
            names.len(),
            names.join(", ")
        );
    }
    let unaddressed: Vec<&Notice> = notices
        .iter()
        .filter(|n| n.owner.address.is_none())
        .collect();
    let what = if args.format == Format::Eml {
        "no message written"
    } else {
        "notice written, deliver it yourself or add the owner to --address-map"
    };
    for n in &unaddressed {
        eprintln!(
            "owner-notice: no address: {} {} ({}, {} VM(s)): {what}",
            n.owner.kind,
            for_terminal(&n.owner.name),
            for_terminal(&n.owner.principal),
            n.vms.len() + n.left_out.len()
        );
    }
    if !args.verbosity.quiet {
        let place = args
            .output
            .as_ref()
            .map_or_else(|| "stdout".into(), |p| p.display().to_string());
        eprintln!(
            "owner-notice: {written} notice(s) for {} owner(s) of {} VM(s) in {place}; {} owner(s) without an address",
            notices.len(),
            vms.len(),
            unaddressed.len()
        );
    }
    if unaddressed.is_empty() {
        ExitCode::Ok
    } else {
        ExitCode::Findings
    }
}
