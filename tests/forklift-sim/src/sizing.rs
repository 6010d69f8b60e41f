//! The sizes the simulated controllers request, each written after the upstream code it follows.
//! Kept apart from liftkit's capacity-calc on purpose: the tests compare the two, so they must be
//! two readings of the same upstream rules, not one.

/// Forklift v2.12.5 `pkg/controller/plan/util/utils.go`, `DefaultAlignBlockSize`: disks are
/// aligned to 1 MiB before any overhead.
pub const ALIGN_BYTES: u64 = 1024 * 1024;

/// A PVC's volume mode, as the StorageProfile of its class reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VolumeMode {
    Filesystem,
    Block,
}

impl VolumeMode {
    pub fn as_str(self) -> &'static str {
        match self {
            VolumeMode::Filesystem => "Filesystem",
            VolumeMode::Block => "Block",
        }
    }

    /// Kubernetes' default when a PVC or a claim property set names none is Filesystem.
    pub fn parse(text: Option<&str>) -> VolumeMode {
        match text {
            Some("Block") => VolumeMode::Block,
            _ => VolumeMode::Filesystem,
        }
    }
}

/// Forklift v2.12.5 `pkg/controller/plan/util/utils.go`, `RoundUp`: up to a multiple.
fn round_up(bytes: u64, multiple: u64) -> u64 {
    bytes.div_ceil(multiple).saturating_mul(multiple)
}

/// Forklift v2.12.5 `pkg/controller/plan/util/utils.go`, `CalculateSpaceWithOverhead`, used by
/// `pkg/controller/plan/adapter/ovirt/builder.go` `persistentVolumeClaimWithSourceRef` for the
/// populator PVC of a cold migration to the local cluster: the provisioned size aligned to 1 MiB;
/// Filesystem: `ceil(aligned / (1 - FILESYSTEM_OVERHEAD/100))` in float64; Block: aligned plus
/// BLOCK_OVERHEAD bytes. Defaults (`pkg/settings/migration.go`): 10 (percent) and 0.
pub fn populator_request_bytes(
    provisioned_bytes: u64,
    mode: VolumeMode,
    filesystem_overhead_percent: u32,
    block_overhead_bytes: u64,
) -> u64 {
    let aligned = round_up(provisioned_bytes, ALIGN_BYTES);
    match mode {
        VolumeMode::Filesystem => {
            let fraction = 1.0 - f64::from(filesystem_overhead_percent) / 100.0;
            (aligned as f64 / fraction).ceil() as u64
        }
        VolumeMode::Block => aligned.saturating_add(block_overhead_bytes),
    }
}

/// Forklift v2.12.5 `pkg/controller/plan/adapter/ovirt/builder.go`, `DataVolumes`: the
/// DataVolume's `spec.storage` request is the larger of the disk's provisioned and actual size.
pub fn datavolume_request_bytes(provisioned_bytes: u64, actual_bytes: u64) -> u64 {
    provisioned_bytes.max(actual_bytes)
}

/// CDI v1.66.0's size for a DataVolume's PVC (`pkg/controller/datavolume/util.go`
/// `renderPvcSpecVolumeSize` → `pkg/controller/common/util.go` `InflateSizeWithOverhead` →
/// `pkg/util/util.go` `GetRequiredSpace`): Filesystem volumes get `ceil(aligned * (1 +
/// overhead))` in float64, the request aligned to 1 MiB; Block volumes the request as given.
/// `overhead` is the CDIConfig's fraction (status.filesystemOverhead, per class or global; CDI's
/// default 0.06, `pkg/common/common.go` `DefaultGlobalOverhead`). CDI multiplies since its commit 26e34df4f (2025-07, "Fix math in overhead
/// size calculations"); Forklift's `CalculateSpaceWithCDIOverhead` still divides.
pub fn cdi_pvc_bytes(requested_bytes: u64, mode: VolumeMode, overhead: f64) -> u64 {
    match mode {
        VolumeMode::Block => requested_bytes,
        VolumeMode::Filesystem => {
            let aligned = round_up(requested_bytes, ALIGN_BYTES);
            (aligned as f64 * (1.0 + overhead)).ceil() as u64
        }
    }
}

/// CDI v1.66.0 `pkg/controller/util.go` `createScratchPersistentVolumeClaim`: the scratch PVC of a
/// PVC requesting `pvc_bytes` (of `mode`) in a Filesystem-mode class with `overhead`: the usable
/// space `GetUsableSpace(pvc overhead, pvc_bytes)` (`pkg/util/util.go`: ceil(bytes / (1 + o)),
/// rounded down to 1 MiB; the PVC's overhead is 0 in Block mode), then `GetRequiredSpace` with the
/// scratch PVC's own (Filesystem) overhead, rounded up to 1 MiB.
pub fn cdi_scratch_bytes(pvc_bytes: u64, mode: VolumeMode, overhead: f64) -> u64 {
    let pvc_overhead = if mode == VolumeMode::Filesystem {
        overhead
    } else {
        0.0
    };
    let usable =
        (pvc_bytes as f64 / (1.0 + pvc_overhead)).ceil() as u64 / ALIGN_BYTES * ALIGN_BYTES;
    round_up(
        cdi_pvc_bytes(usable, VolumeMode::Filesystem, overhead),
        ALIGN_BYTES,
    )
}

const MI: u64 = 1024 * 1024;

/// What KubeVirt v1.9.0 asks for a VM's virt-launcher `compute` container: memory for the guest
/// plus its overhead, CPU as vCPUs divided by the cluster's cpuAllocationRatio.
#[derive(Debug, Clone, PartialEq)]
pub struct LauncherRequests {
    /// The quantity text KubeVirt renders (`800m`, `1.6`).
    pub cpu: String,
    pub memory_bytes: u64,
    pub overhead_bytes: u64,
}

/// KubeVirt v1.9.0 `pkg/hypervisor/kvm/hypervisorbackend.go`, `GetMemoryOverhead`, for a VMI as
/// Forklift builds it for an oVirt VM on x86_64 (memory given as `memory.guest` only, no probes,
/// no VFIO, no SEV, not dedicated CPUs): page tables from `resources.requests.memory` (which
/// Forklift leaves unset, so 0), 25Mi virt-launcher-monitor + 100Mi virt-launcher + 25Mi
/// virtlogd + 40Mi virtqemud + 30Mi qemu, 8Mi per vCPU, 8Mi for the IOThread, 32Mi video RAM
/// (graphics auto-attached by default), 53Mi when the VM has a TPM (Forklift v2.12.5
/// `adapter/ovirt/builder.go` `mapTpm`: windows_2022 and windows_11).
pub fn launcher_memory_overhead_bytes(vcpus: u64, requested_memory_bytes: u64, tpm: bool) -> u64 {
    let page_tables = (requested_memory_bytes / 1000) * 1000 / 512;
    let fixed = (25 + 100 + 25 + 40 + 30) * MI;
    let per_vcpu = 8 * MI * vcpus.max(1);
    let io_thread = 8 * MI;
    let video = 32 * MI;
    let tpm = if tpm { 53 * MI } else { 0 };
    page_tables + fixed + per_vcpu + io_thread + video + tpm
}

/// KubeVirt v1.9.0 `pkg/virt-controller/services/renderresources.go`, `WithoutDedicatedCPU`:
/// `vcpus / cpuAllocationRatio` formatted with Go's `%g`, in millicores below one CPU.
pub fn launcher_cpu_request(vcpus: u64, cpu_allocation_ratio: u32) -> String {
    let value = vcpus.max(1) as f64 / f64::from(cpu_allocation_ratio.max(1));
    if value < 1.0 {
        format!("{}m", value * 1000.0)
    } else {
        format!("{value}")
    }
}

/// KubeVirt's requests for the compute container of a VM with `vcpus` vCPUs and `guest_bytes`
/// of memory (`renderresources.go` `WithMemoryRequests` with memory overcommit 100, then
/// `WithMemoryOverhead`).
pub fn launcher_requests(
    vcpus: u64,
    guest_bytes: u64,
    tpm: bool,
    cpu_allocation_ratio: u32,
) -> LauncherRequests {
    let overhead = launcher_memory_overhead_bytes(vcpus, 0, tpm);
    LauncherRequests {
        cpu: launcher_cpu_request(vcpus, cpu_allocation_ratio),
        memory_bytes: guest_bytes + overhead,
        overhead_bytes: overhead,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GIB: u64 = 1 << 30;

    #[test]
    fn populator_filesystem_divides_by_ninety_percent_after_alignment() {
        // 50 GiB is already aligned: ceil(53687091200 / 0.9).
        assert_eq!(
            populator_request_bytes(50 * GIB, VolumeMode::Filesystem, 10, 0),
            59652323556
        );
        // One byte over a MiB boundary aligns up a whole MiB first: 2 MiB / 0.9.
        assert_eq!(
            populator_request_bytes(MI + 1, VolumeMode::Filesystem, 10, 0),
            2330169
        );
        assert_eq!(
            populator_request_bytes(50 * GIB, VolumeMode::Filesystem, 0, 0),
            50 * GIB
        );
    }

    #[test]
    fn populator_block_adds_the_block_overhead_to_the_aligned_size() {
        assert_eq!(
            populator_request_bytes(50 * GIB + 1, VolumeMode::Block, 10, 0),
            50 * GIB + MI
        );
        assert_eq!(
            populator_request_bytes(50 * GIB, VolumeMode::Block, 10, 4096),
            50 * GIB + 4096
        );
    }

    #[test]
    fn cdi_adds_its_overhead_to_filesystem_volumes_only() {
        assert_eq!(datavolume_request_bytes(10 * GIB, 12 * GIB), 12 * GIB);
        // ceil(10737418240 * 1.055)
        assert_eq!(
            cdi_pvc_bytes(10 * GIB, VolumeMode::Filesystem, 0.055),
            11327976244
        );
        assert_eq!(cdi_pvc_bytes(10 * GIB, VolumeMode::Block, 0.055), 10 * GIB);
    }

    #[test]
    fn launcher_requests_follow_kubevirt() {
        // 8 vCPUs, 4 GiB: 0.8 CPU; 260Mi fixed + 64Mi for the vCPUs.
        let r = launcher_requests(8, 4 * GIB, false, 10);
        assert_eq!(r.cpu, "800m");
        assert_eq!(r.memory_bytes, 4 * GIB + 324 * MI);
        assert_eq!(launcher_cpu_request(16, 10), "1.6");
        assert_eq!(launcher_cpu_request(10, 10), "1");
        assert_eq!(launcher_cpu_request(1, 10), "100m");
        assert_eq!(launcher_requests(2, GIB, true, 10).overhead_bytes, 329 * MI);
    }
}
