//! What a migration holds in its target namespace, as Forklift, CDI and KubeVirt size it: each
//! disk's PVC on the path Forklift copies it by, the PVCs held only while a disk is copied, and
//! the pods' requests. Every rule names the release and file it follows (Forklift v2.12.5, CDI
//! v1.66.0, KubeVirt v1.9.0); arithmetic is done as they do it (f64 where they use float64).

use crate::mapping::VolumeMode;
use std::collections::BTreeMap;

pub const MIB: u64 = 1 << 20;

/// Forklift v2.12.5 pkg/controller/plan/util/utils.go `DefaultAlignBlockSize`; CDI v1.66.0
/// pkg/util/util.go `DefaultAlignBlockSize` is the same 1 MiB.
pub const ALIGN_BYTES: u64 = MIB;

/// Forklift v2.12.5 pkg/settings/migration.go: `FILESYSTEM_OVERHEAD` (a whole percent) defaults to 10.
pub const DEFAULT_FILESYSTEM_OVERHEAD_PERCENT: u32 = 10;
/// Forklift v2.12.5 pkg/settings/migration.go: `BLOCK_OVERHEAD` (a quantity) defaults to 0.
pub const DEFAULT_BLOCK_OVERHEAD_BYTES: u64 = 0;
/// Forklift v2.12.5 pkg/settings/migration.go: `MAX_VM_INFLIGHT` defaults to 20 (VMs migrating at
/// once per source provider, pkg/controller/plan/scheduler/ovirt/scheduler.go).
pub const DEFAULT_MAX_VM_INFLIGHT: u64 = 20;
/// CDI v1.66.0 pkg/common/common.go `DefaultGlobalOverhead` "0.06" (CDI up to v1.62 had 0.055 and
/// divided by 1 - overhead; v1.63 multiplies, which with 6% gives slightly more).
pub const DEFAULT_CDI_FILESYSTEM_OVERHEAD: f64 = 0.06;

/// A size rounded up to a multiple of `multiple`. Forklift's and CDI's `RoundUp` divide in
/// float64, which is exact for the sizes allowed here (below 2^53 bytes, divided by a power of two).
pub fn round_up(bytes: u64, multiple: u64) -> u64 {
    bytes.div_ceil(multiple).saturating_mul(multiple)
}

/// CDI v1.66.0 pkg/util/util.go `RoundDown`.
pub fn round_down(bytes: u64, multiple: u64) -> u64 {
    bytes / multiple * multiple
}

/// The bytes Forklift copies of an image disk, and what it requests on a DataVolume:
/// max(provisioned, actual) (Forklift v2.12.5 pkg/controller/plan/adapter/ovirt/builder.go
/// `DataVolumes`). A missing size counts as 0.
pub fn copied_bytes(provisioned: Option<u64>, actual: Option<u64>) -> u64 {
    provisioned.unwrap_or(0).max(actual.unwrap_or(0))
}

/// How Forklift copies a plan's disks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CopyPath {
    /// Cold, to the local cluster: one PVC per disk filled by an OvirtVolumePopulator.
    Populator,
    /// Cold to a remote cluster: CDI DataVolumes, one full copy.
    ColdDataVolume,
    /// Warm: CDI DataVolumes, a full copy then snapshot deltas until the cutover.
    WarmDataVolume,
}

impl CopyPath {
    /// Forklift v2.12.5 adapter/ovirt/builder.go `SupportsVolumePopulators`: populators when the
    /// plan is cold and its destination is the local cluster (the `host` provider).
    pub fn new(warm: bool, local_destination: bool) -> CopyPath {
        match (warm, local_destination) {
            (true, _) => CopyPath::WarmDataVolume,
            (false, true) => CopyPath::Populator,
            (false, false) => CopyPath::ColdDataVolume,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            CopyPath::Populator => "populator",
            CopyPath::ColdDataVolume => "datavolume-cold",
            CopyPath::WarmDataVolume => "datavolume-warm",
        }
    }

    /// The volume mode of a disk's PVC. The populator path reads the class's StorageProfile
    /// (builder.go `getDefaultVolumeAndAccessMode`: claimPropertySets[0].volumeMode, Filesystem when
    /// unset) and ignores the StorageMap's mode; a DataVolume carries the StorageMap's mode when it
    /// has one (builder.go `DataVolumes`), else CDI takes the StorageProfile's (CDI v1.66.0
    /// pkg/controller/datavolume/util.go `renderPvcSpecVolumeModeAndAccessModesAndStorageClass`).
    pub fn volume_mode(
        self,
        map_mode: Option<VolumeMode>,
        profile_mode: Option<VolumeMode>,
    ) -> VolumeMode {
        match self {
            CopyPath::Populator => profile_mode,
            CopyPath::ColdDataVolume | CopyPath::WarmDataVolume => map_mode.or(profile_mode),
        }
        .unwrap_or(VolumeMode::Filesystem)
    }

    /// The requests of the pod that copies one disk: Forklift's populator pod, or CDI's importer.
    pub fn copy_pod(self) -> PodResources {
        match self {
            CopyPath::Populator => POPULATOR_POD_REQUESTS,
            CopyPath::ColdDataVolume | CopyPath::WarmDataVolume => CDI_IMPORTER_POD_REQUESTS,
        }
    }

    /// The requests of the one pod per VM besides the copy pods, on the populator path only:
    /// Forklift's PVC consumer pod (see `PVC_CONSUMER_POD_REQUESTS`).
    pub fn vm_pod(self) -> Option<PodResources> {
        match self {
            CopyPath::Populator => Some(PVC_CONSUMER_POD_REQUESTS),
            CopyPath::ColdDataVolume | CopyPath::WarmDataVolume => None,
        }
    }
}

/// Forklift's and CDI's settings that size disks.
#[derive(Debug, Clone, PartialEq)]
pub struct Overheads {
    /// Forklift `FILESYSTEM_OVERHEAD` (percent).
    pub filesystem_percent: u32,
    /// Forklift `BLOCK_OVERHEAD` (bytes).
    pub block_bytes: u64,
    /// CDIConfig `filesystemOverhead.global` (a fraction).
    pub cdi_global: f64,
    /// CDIConfig `filesystemOverhead.storageClass`.
    pub cdi_by_class: BTreeMap<String, f64>,
}

impl Default for Overheads {
    fn default() -> Self {
        Overheads {
            filesystem_percent: DEFAULT_FILESYSTEM_OVERHEAD_PERCENT,
            block_bytes: DEFAULT_BLOCK_OVERHEAD_BYTES,
            cdi_global: DEFAULT_CDI_FILESYSTEM_OVERHEAD,
            cdi_by_class: BTreeMap::new(),
        }
    }
}

impl Overheads {
    /// CDI's overhead for a class: its own, else the global one (CDI v1.66.0
    /// pkg/controller/common/util.go `GetFilesystemOverheadForStorageClass`).
    pub fn cdi(&self, class: &str) -> f64 {
        self.cdi_by_class
            .get(class)
            .copied()
            .unwrap_or(self.cdi_global)
    }
}

/// Forklift v2.12.5 pkg/controller/plan/util/utils.go `CalculateSpaceWithOverhead`, as
/// `persistentVolumeClaimWithSourceRef` (adapter/ovirt/builder.go) applies it to the provisioned
/// size: align to 1 MiB; Filesystem: ceil(aligned / (1 - FILESYSTEM_OVERHEAD/100)); Block: aligned
/// + BLOCK_OVERHEAD. No rounding to whole GiB.
pub fn populator_pvc_bytes(provisioned: u64, mode: VolumeMode, overheads: &Overheads) -> u64 {
    let aligned = round_up(provisioned, ALIGN_BYTES);
    match mode {
        VolumeMode::Filesystem => {
            let keep = 1.0 - f64::from(overheads.filesystem_percent) / 100.0;
            (aligned as f64 / keep).ceil() as u64
        }
        VolumeMode::Block => aligned.saturating_add(overheads.block_bytes),
    }
}

/// The PVC CDI makes for a DataVolume's storage request: CDI v1.66.0
/// pkg/controller/common/util.go `InflateSizeWithOverhead` with pkg/util/util.go
/// `GetRequiredSpace`: Filesystem: ceil(align_1MiB(request) * (1 + overhead)); Block: the request.
pub fn cdi_pvc_bytes(request: u64, mode: VolumeMode, overhead: f64) -> u64 {
    match mode {
        VolumeMode::Filesystem => required_space(overhead, request),
        VolumeMode::Block => request,
    }
}

/// CDI v1.66.0 pkg/util/util.go `GetRequiredSpace`.
fn required_space(overhead: f64, bytes: u64) -> u64 {
    (round_up(bytes, ALIGN_BYTES) as f64 * (1.0 + overhead)).ceil() as u64
}

/// The scratch PVC CDI adds while an importer converts a download (CDI v1.66.0
/// pkg/controller/util.go `createScratchPersistentVolumeClaim`): in the DataVolume's class (unless
/// CDIConfig names a scratch class), always Filesystem. From the DataVolume PVC's request S:
/// usable = round_down(ceil(S / (1 + o_pvc)), 1 MiB) (`GetUsableSpace`; o_pvc is 0 for Block),
/// then round_up(GetRequiredSpace(o_class, usable), 1 MiB).
pub fn cdi_scratch_bytes(pvc_bytes: u64, pvc_mode: VolumeMode, overhead: f64) -> u64 {
    let pvc_overhead = match pvc_mode {
        VolumeMode::Filesystem => overhead,
        VolumeMode::Block => 0.0,
    };
    let usable = round_down(
        (pvc_bytes as f64 / (1.0 + pvc_overhead)).ceil() as u64,
        ALIGN_BYTES,
    );
    round_up(required_space(overhead, usable), ALIGN_BYTES)
}

/// What one image disk needs in its class.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DiskNeed {
    pub mode: VolumeMode,
    /// The PVC the VM keeps.
    pub pvc_bytes: u64,
    /// Held besides, only while the disk is copied: the populator's prime PVC (Forklift v2.12.5
    /// pkg/lib-volume-populator/populator-machinery/controller.go: same request as the PVC), CDI's
    /// prime PVC on a cold DataVolume (CDI v1.66.0 pkg/controller/populators/populator-base.go
    /// `createPVCPrime`, used for CSI classes, counted always), or on a warm one CDI's scratch PVC
    /// for the snapshot deltas (downloaded as qcow2, pkg/importer/imageio-datasource.go; Forklift
    /// sets usePopulator=false on warm DataVolumes, pkg/controller/plan/kubevirt.go).
    pub copy_bytes: u64,
}

/// A disk's need on `path` in `class`, from its oVirt sizes and the PVC's volume mode.
pub fn disk_need(
    path: CopyPath,
    class: &str,
    mode: VolumeMode,
    provisioned: Option<u64>,
    actual: Option<u64>,
    overheads: &Overheads,
) -> DiskNeed {
    match path {
        CopyPath::Populator => {
            let pvc_bytes = populator_pvc_bytes(provisioned.unwrap_or(0), mode, overheads);
            DiskNeed {
                mode,
                pvc_bytes,
                copy_bytes: pvc_bytes,
            }
        }
        CopyPath::ColdDataVolume | CopyPath::WarmDataVolume => {
            let overhead = overheads.cdi(class);
            let pvc_bytes = cdi_pvc_bytes(copied_bytes(provisioned, actual), mode, overhead);
            let copy_bytes = if path == CopyPath::WarmDataVolume {
                cdi_scratch_bytes(pvc_bytes, mode, overhead)
            } else {
                pvc_bytes
            };
            DiskNeed {
                mode,
                pvc_bytes,
                copy_bytes,
            }
        }
    }
}

/// A pod's memory and CPU (requests or limits).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PodResources {
    pub memory_bytes: u64,
    pub cpu_millis: u64,
}

impl PodResources {
    /// As Kubernetes quantities: (`cpu`, `memory`).
    pub fn quantities(self) -> (String, String) {
        (
            cpu_quantity(self.cpu_millis),
            crate::size::k8s_quantity(self.memory_bytes),
        )
    }
}

/// Forklift v2.12.5 pkg/settings/populator.go: the populator pod's requests
/// (`POPULATOR_CONTAINER_REQUESTS_CPU` 100m, `..._MEMORY` 512Mi), set on the pod since v2.12.4
/// (cmd/populator-controller `buildResources`; earlier v2.12 releases set them to zero).
pub const POPULATOR_POD_REQUESTS: PodResources = PodResources {
    memory_bytes: 512 << 20,
    cpu_millis: 100,
};
/// Forklift v2.12.5 pkg/settings/populator.go: the populator pod's limits (1 CPU, 1Gi).
pub const POPULATOR_POD_LIMITS: PodResources = PodResources {
    memory_bytes: 1 << 30,
    cpu_millis: 1000,
};
/// Forklift v2.12.5 pkg/controller/plan/kubevirt.go `createPodToBindPVCs`, called by
/// `EnsurePopulatorVolumes` in CreateDataVolumes (migration.go) for a VM's Pending populator PVCs:
/// one pod per VM mounting them, requests VIRT_V2V_CONTAINER_REQUESTS_CPU/MEMORY (defaults 1000m and
/// 1Gi, pkg/settings/migration.go). It cannot start before the populators bind the PVCs, so it is
/// Pending, and counted by a quota, for the whole copy.
pub const PVC_CONSUMER_POD_REQUESTS: PodResources = PodResources {
    memory_bytes: 1 << 30,
    cpu_millis: 1000,
};
/// CDI v1.66.0 pkg/controller/config-controller.go: importer pods request 100m and 60M
/// (CDIConfig `defaultPodResourceRequirements`).
pub const CDI_IMPORTER_POD_REQUESTS: PodResources = PodResources {
    memory_bytes: 60_000_000,
    cpu_millis: 100,
};

/// The LimitRange liftkit writes where a quota limits compute: pods that set no requests (or
/// limits) get the populator pod's, the copy pod the quota already counts them as.
pub const LIMIT_RANGE_DEFAULT_REQUEST: PodResources = POPULATOR_POD_REQUESTS;
pub const LIMIT_RANGE_DEFAULT_LIMIT: PodResources = POPULATOR_POD_LIMITS;

/// A CPU quantity: whole cores as `2`, else millicores as `1500m`.
pub fn cpu_quantity(millis: u64) -> String {
    if millis.is_multiple_of(1000) {
        (millis / 1000).to_string()
    } else {
        format!("{millis}m")
    }
}

/// What KubeVirt's launcher pod needs to know of a guest, as Forklift maps it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Guest {
    pub memory_bytes: u64,
    pub vcpus: u64,
    /// Forklift v2.12.5 builder.go `mapTpm`: a persistent TPM for os_type windows_2022 and windows_11.
    pub tpm: bool,
    /// Forklift v2.12.5 builder.go `mapCPU`: dedicatedCpuPlacement for cpu pinning policy `dedicated`.
    pub dedicated_cpu: bool,
}

impl Guest {
    /// Whether Forklift gives the VM a TPM (builder.go `mapTpm`).
    pub fn forklift_adds_tpm(os_type: Option<&str>) -> bool {
        matches!(os_type, Some("windows_2022" | "windows_11"))
    }

    /// Whether Forklift asks for dedicated CPUs (builder.go `mapCPU`).
    pub fn forklift_dedicates_cpus(pinning_policy: Option<&str>) -> bool {
        pinning_policy == Some("dedicated")
    }

    /// KubeVirt v1.9.0 pkg/hypervisor/kvm/hypervisorbackend.go `GetMemoryOverhead` on x86_64,
    /// for what Forklift writes (pod or bridge networks, graphics left to the default, no probes,
    /// VFIO or SEV): page tables floor(ceil(memory / 1000) * 1000 / 512), 220Mi for the launcher's
    /// processes (monitor 25, launcher 100, virtlogd 25, virtqemud 40, qemu 30), 8Mi per vCPU, 8Mi
    /// for the IO thread, 32Mi video, 53Mi with a TPM, 100Mi with dedicated CPUs.
    pub fn memory_overhead_bytes(&self) -> u64 {
        let page_tables = self.memory_bytes.div_ceil(1000) * 1000 / 512;
        let mut overhead =
            page_tables + (220 << 20) + (8 << 20) * self.vcpus.max(1) + (8 << 20) + (32 << 20);
        if self.tpm {
            overhead += 53 << 20;
        }
        if self.dedicated_cpu {
            overhead += 100 << 20;
        }
        overhead
    }

    /// The launcher pod's memory request: the guest's memory plus the overhead (KubeVirt v1.9.0
    /// pkg/virt-controller/services/renderresources.go `WithMemoryOverhead`; memoryOvercommit 100),
    /// plus the guest-console-log sidecar's 35M (60M with dedicated CPUs), which KubeVirt adds
    /// unless serial console logging is disabled (services/serialconsolelog.go).
    pub fn launcher_memory_bytes(&self) -> u64 {
        let console_log = if self.dedicated_cpu {
            60_000_000
        } else {
            35_000_000
        };
        self.memory_bytes + self.memory_overhead_bytes() + console_log
    }

    /// The CPU liftkit's quota allows the launcher pod: one core per vCPU, plus the console-log
    /// sidecar's 5m (15m with dedicated CPUs). KubeVirt requests vCPUs / cpuAllocationRatio
    /// (renderresources.go `WithoutDedicatedCPU`, ratio 10 by default, pkg/virt-config) and whole
    /// cores with dedicated CPUs; a core per vCPU holds for every ratio an admin may set, so a VM
    /// never fails to start, after its copy, on a quota liftkit wrote.
    pub fn quota_cpu_millis(&self) -> u64 {
        let console_log = if self.dedicated_cpu { 15 } else { 5 };
        self.vcpus.max(1) * 1000 + console_log
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use VolumeMode::{Block, Filesystem};

    const GIB: u64 = 1 << 30;

    #[test]
    fn populator_sizes_follow_calculate_space_with_overhead() {
        let o = Overheads::default();
        // 100 GiB, aligned already: / 0.9 and up to a byte.
        assert_eq!(
            populator_pvc_bytes(100 * GIB, Filesystem, &o),
            119_304_647_112
        );
        // One byte past 1 MiB aligns to 2 MiB first.
        assert_eq!(populator_pvc_bytes(MIB + 1, Filesystem, &o), 2_330_169);
        assert_eq!(populator_pvc_bytes(MIB + 1, Block, &o), 2 * MIB);
        let o = Overheads {
            block_bytes: GIB,
            filesystem_percent: 0,
            ..Overheads::default()
        };
        assert_eq!(populator_pvc_bytes(10 * GIB, Block, &o), 11 * GIB);
        assert_eq!(populator_pvc_bytes(10 * GIB, Filesystem, &o), 10 * GIB);
        assert_eq!(populator_pvc_bytes(0, Filesystem, &o), 0);
    }

    #[test]
    fn cdi_sizes_follow_get_required_space() {
        // 10 GiB * 1.06 = 11381663334.4, up to a byte.
        assert_eq!(cdi_pvc_bytes(10 * GIB, Filesystem, 0.06), 11_381_663_335);
        assert_eq!(cdi_pvc_bytes(10 * GIB + 1, Block, 0.06), 10 * GIB + 1);
        // The scratch PVC of that Filesystem DataVolume: usable back to 10 GiB, then * 1.06 and up
        // to a MiB.
        assert_eq!(
            cdi_scratch_bytes(11_381_663_335, Filesystem, 0.06),
            10855 * MIB
        );
        // A Block DataVolume's scratch: its request down to a MiB, then * 1.06, up to a MiB.
        assert_eq!(cdi_scratch_bytes(10 * GIB + 1, Block, 0.06), 10855 * MIB);
    }

    #[test]
    fn the_path_decides_mode_and_transient_bytes() {
        let o = Overheads::default();
        assert_eq!(CopyPath::new(false, true), CopyPath::Populator);
        assert_eq!(CopyPath::new(false, false), CopyPath::ColdDataVolume);
        assert_eq!(CopyPath::new(true, true), CopyPath::WarmDataVolume);
        assert_eq!(
            CopyPath::Populator.volume_mode(Some(Block), None),
            Filesystem
        );
        assert_eq!(
            CopyPath::ColdDataVolume.volume_mode(Some(Block), None),
            Block
        );
        assert_eq!(
            CopyPath::WarmDataVolume.volume_mode(None, Some(Block)),
            Block
        );
        // The populator sizes the provisioned size; a DataVolume the larger of provisioned and actual.
        let p = disk_need(
            CopyPath::Populator,
            "c",
            Block,
            Some(GIB),
            Some(2 * GIB),
            &o,
        );
        assert_eq!((p.pvc_bytes, p.copy_bytes), (GIB, GIB));
        let d = disk_need(
            CopyPath::ColdDataVolume,
            "c",
            Block,
            Some(GIB),
            Some(2 * GIB),
            &o,
        );
        assert_eq!((d.pvc_bytes, d.copy_bytes), (2 * GIB, 2 * GIB));
        let mut o = o;
        o.cdi_by_class.insert("c".into(), 0.1);
        let w = disk_need(
            CopyPath::WarmDataVolume,
            "c",
            Filesystem,
            Some(GIB),
            None,
            &o,
        );
        assert_eq!(w.pvc_bytes, 1_181_116_007); // ceil(2^30 * 1.1)
    }

    #[test]
    fn launcher_requests_follow_kubevirt() {
        let guest = Guest {
            memory_bytes: 4 * GIB,
            vcpus: 2,
            tpm: false,
            dedicated_cpu: false,
        };
        // ceil(4294967296 / 1000) * 1000 / 512 = 8388609 (integer division).
        let page_tables = 8_388_609;
        let fixed = (220 + 16 + 8 + 32) << 20;
        assert_eq!(guest.memory_overhead_bytes(), page_tables + fixed);
        assert_eq!(
            guest.launcher_memory_bytes(),
            4 * GIB + page_tables + fixed + 35_000_000
        );
        assert_eq!(guest.quota_cpu_millis(), 2005);
        let windows = Guest {
            tpm: true,
            dedicated_cpu: true,
            ..guest
        };
        assert_eq!(
            windows.memory_overhead_bytes(),
            page_tables + fixed + (153 << 20)
        );
        assert!(Guest::forklift_adds_tpm(Some("windows_11")));
        assert!(!Guest::forklift_adds_tpm(Some("windows_2019x64")));
        assert_eq!(cpu_quantity(2000), "2");
        assert_eq!(cpu_quantity(100), "100m");
        assert_eq!(
            LIMIT_RANGE_DEFAULT_REQUEST.quantities(),
            ("100m".into(), "512Mi".into())
        );
    }
}
