//! Quota records, one per namespace, for rbac-gen --quota: the ResourceQuota's `hard` figures that
//! let a migration through (storage at the copy peak, the launcher and copy pods' requests), the
//! LimitRange defaults for pods that set none, and the figures behind them.

use crate::sums::{NONE, Report, Sums};
use common::Result;
use common::footprint::{self, CopyPath};
use common::jsonl::Writer;
use common::size::{GIB, k8s_quantity, round_up_gib};
use serde_json::{Map, Value, json};
use std::io::Write;

/// What the quota figures depend on besides the sums.
pub struct Settings {
    /// Added to every figure (0.2 is 20%).
    pub headroom: f64,
    pub path: CopyPath,
    pub max_vm_inflight: u64,
}

fn limit_range() -> Value {
    let (request_cpu, request_memory) = footprint::LIMIT_RANGE_DEFAULT_REQUEST.quantities();
    let (limit_cpu, limit_memory) = footprint::LIMIT_RANGE_DEFAULT_LIMIT.quantities();
    json!({
        "default_request": {"cpu": request_cpu, "memory": request_memory},
        "default": {"cpu": limit_cpu, "memory": limit_memory},
    })
}

/// A quota record for one namespace.
pub fn quota_record(namespace: &str, sums: &Sums, settings: &Settings) -> Value {
    let grow = |x: u64| (x as f64 * (1.0 + settings.headroom)).ceil() as u64;
    let gib = |x: u64| k8s_quantity(round_up_gib(grow(x)).max(if x > 0 { GIB } else { 0 }));
    let copy_pod = settings.path.copy_pod();
    let pods = sums.copy_pods.sum;
    // Per VM in flight, on the populator path: Forklift's PVC consumer pod.
    let vm_pods = settings.path.vm_pod().map_or(0, |_| sums.copying_vms.sum);
    let vm_pod = settings.path.vm_pod().unwrap_or(copy_pod);
    let memory = sums
        .launcher_memory_bytes
        .saturating_add(pods.saturating_mul(copy_pod.memory_bytes))
        .saturating_add(vm_pods.saturating_mul(vm_pod.memory_bytes));
    let cpu_millis =
        sums.launcher_cpu_millis + pods * copy_pod.cpu_millis + vm_pods * vm_pod.cpu_millis;
    let peak = sums.peak_pvc_bytes();
    let mut hard = Map::new();
    // LUN PVCs have no class but count in requests.storage (builder.go LunPersistentVolumeClaims).
    let storage = sums.peak_pvc_total_bytes().saturating_add(sums.lun_bytes);
    hard.insert("requests.storage".into(), json!(gib(storage)));
    for (class, bytes) in &peak {
        hard.insert(
            format!("{class}.storageclass.storage.k8s.io/requests.storage"),
            json!(gib(*bytes)),
        );
    }
    hard.insert(
        "requests.cpu".into(),
        json!(grow(cpu_millis).div_ceil(1000).to_string()),
    );
    hard.insert("requests.memory".into(), json!(gib(memory)));
    hard.insert(
        "count/virtualmachines.kubevirt.io".into(),
        json!(grow(sums.vms).to_string()),
    );
    json!({
        "namespace": namespace,
        "vm_count": sums.vms,
        "headroom_percent": (settings.headroom * 1e6).round() / 1e4,
        "copy_path": settings.path.as_str(),
        "max_vm_inflight": settings.max_vm_inflight,
        "pvc_bytes": sums.pvc_bytes,
        "peak_pvc_bytes": peak,
        "pvc_total_bytes": sums.pvc_total_bytes(),
        "peak_pvc_total_bytes": sums.peak_pvc_total_bytes(),
        "lun_bytes": sums.lun_bytes,
        "launcher_memory_bytes": sums.launcher_memory_bytes,
        "launcher_cpu_millis": sums.launcher_cpu_millis,
        "copy_pods_in_flight": pods,
        "consumer_pods_in_flight": vm_pods,
        "hard": hard,
        "limit_range": limit_range(),
    })
}

/// Writes one quota record per namespace (VMs without one are left out, with a warning).
pub fn write<W: Write>(
    out: &mut W,
    name: &str,
    report: &Report,
    settings: &Settings,
) -> Result<()> {
    let mut writer = Writer::new(name, out);
    for (values, sums) in &report.groups {
        if values[0] == NONE {
            tracing::warn!(
                "{} VMs have no target_namespace (run owner-group first); no quota for them",
                sums.vms
            );
            continue;
        }
        writer.write(&quota_record(&values[0], sums, settings))?;
    }
    writer.flush()
}
