//! Where each disk goes and what it needs there: the storage class from the storage map, the
//! volume mode and sizes by common::footprint's rules for the copy path.

use common::footprint::{self, CopyPath, DiskNeed, Guest, Overheads};
use common::mapping::{Mappings, SourceObject, VolumeMode};
use common::record::{Cpu, NamedRef, VmView};
use serde::Deserialize;
use std::collections::BTreeMap;

/// The storage class of disks no --storage-map rule matches.
pub const UNMAPPED: &str = "unmapped";

/// The largest memory or disk size taken as real: 1 PiB, common's rule for every tool.
pub const MAX_PLAUSIBLE_BYTES: u64 = common::size::MAX_BYTES;

/// What capacity-calc reads of a VM record; the rest is skipped unread.
#[derive(Debug, Deserialize)]
pub struct SizedVm {
    pub schema: u32,
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub data_center: Option<NamedRef>,
    #[serde(default)]
    pub cluster: Option<NamedRef>,
    #[serde(default, deserialize_with = "common::size::field::memory_bytes")]
    pub memory_bytes: Option<u64>,
    #[serde(default)]
    pub cpu: Option<Cpu>,
    #[serde(default)]
    pub os_type: Option<String>,
    #[serde(default)]
    pub disks: Option<Vec<SizedDisk>>,
    #[serde(default)]
    pub owners: Option<Vec<OwnerPrincipal>>,
    #[serde(default)]
    pub target_namespace: Option<String>,
}

impl VmView for SizedVm {
    fn schema(&self) -> u32 {
        self.schema
    }
    fn name(&self) -> &str {
        &self.name
    }
}

impl SizedVm {
    pub fn disks(&self) -> &[SizedDisk] {
        self.disks.as_deref().unwrap_or(&[])
    }

    pub fn vcpus(&self) -> u32 {
        self.cpu.as_ref().map(Cpu::vcpus).unwrap_or(1)
    }

    /// The guest as Forklift hands it to KubeVirt.
    pub fn guest(&self) -> Guest {
        Guest {
            memory_bytes: self.memory_bytes.unwrap_or(0),
            vcpus: u64::from(self.vcpus()),
            tpm: Guest::forklift_adds_tpm(self.os_type.as_deref()),
            dedicated_cpu: Guest::forklift_dedicates_cpus(
                self.cpu.as_ref().and_then(|c| c.pinning_policy.as_deref()),
            ),
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct OwnerPrincipal {
    pub principal: String,
}

/// What capacity-calc reads of a disk.
#[derive(Debug, Deserialize)]
pub struct SizedDisk {
    pub attachment_id: String,
    #[serde(default)]
    pub disk_id: Option<String>,
    #[serde(default)]
    pub shareable: Option<bool>,
    #[serde(default)]
    pub storage_type: Option<String>,
    #[serde(default, deserialize_with = "common::size::field::provisioned_bytes")]
    pub provisioned_bytes: Option<u64>,
    #[serde(default, deserialize_with = "common::size::field::actual_bytes")]
    pub actual_bytes: Option<u64>,
    #[serde(default, deserialize_with = "common::size::field::lun_size_bytes")]
    pub lun_size_bytes: Option<u64>,
    #[serde(default)]
    pub storage_domain: Option<NamedRef>,
}

impl SizedDisk {
    pub fn is_lun(&self) -> bool {
        self.storage_type.as_deref() == Some("lun")
    }

    /// The LUN's size: Forklift's LUN PVC requests it (builder.go `LunPersistentVolumeClaims`).
    pub fn lun_bytes(&self) -> u64 {
        self.lun_size_bytes.or(self.provisioned_bytes).unwrap_or(0)
    }
}

/// A disk's storage class and need (LUNs: class empty, need zero; they are not copied).
#[derive(Debug, Clone)]
pub struct PlannedDisk {
    pub class: String,
    pub need: DiskNeed,
}

/// A VM with its guest and, per disk in order, where it goes and what it needs.
pub struct PlannedVm {
    pub vm: SizedVm,
    pub guest: Guest,
    pub disks: Vec<PlannedDisk>,
}

/// Where each disk goes, and what it needs.
pub struct Planner {
    pub maps: Mappings,
    pub path: CopyPath,
    pub overheads: Overheads,
    /// Each class's StorageProfile volume mode (--volume-mode); Filesystem when not given.
    pub profile_modes: BTreeMap<String, VolumeMode>,
}

impl Planner {
    /// The storage class of a disk (`unmapped` when no rule matches) and the map's volume mode.
    pub fn target(&self, vm: &SizedVm, disk: &SizedDisk) -> (String, Option<VolumeMode>) {
        let sd = disk.storage_domain.as_ref();
        let object = SourceObject {
            id: sd.map(|s| s.id.as_ref()),
            data_center: vm.data_center.as_ref().and_then(|d| d.name.as_deref()),
            name: sd.and_then(|s| s.name.as_deref()),
        };
        match self.maps.storage.lookup(&object) {
            Some(rule) => (
                rule.destination.storage_class.clone(),
                rule.destination.volume_mode,
            ),
            None => (UNMAPPED.to_string(), None),
        }
    }

    /// The VM with each disk's storage class and need.
    pub fn plan(&self, vm: SizedVm) -> PlannedVm {
        let disks = vm.disks().iter().map(|d| self.disk(&vm, d)).collect();
        PlannedVm {
            guest: vm.guest(),
            vm,
            disks,
        }
    }

    fn disk(&self, vm: &SizedVm, disk: &SizedDisk) -> PlannedDisk {
        if disk.is_lun() {
            let none = DiskNeed {
                mode: VolumeMode::Block,
                pvc_bytes: 0,
                copy_bytes: 0,
            };
            return PlannedDisk {
                class: String::new(),
                need: none,
            };
        }
        let (class, map_mode) = self.target(vm, disk);
        let mode = self
            .path
            .volume_mode(map_mode, self.profile_modes.get(&class).copied());
        let need = footprint::disk_need(
            self.path,
            &class,
            mode,
            disk.provisioned_bytes,
            disk.actual_bytes,
            &self.overheads,
        );
        PlannedDisk { class, need }
    }

    /// Storage-map volume modes the populator path does not use (it reads the StorageProfile),
    /// one line per class whose --volume-mode says otherwise.
    pub fn ignored_map_modes(&self) -> Vec<String> {
        if self.path != CopyPath::Populator {
            return Vec::new();
        }
        let mut seen = BTreeMap::new();
        for rule in self.maps.storage.rules() {
            let target = &rule.destination;
            let profile = self
                .profile_modes
                .get(&target.storage_class)
                .copied()
                .unwrap_or(VolumeMode::Filesystem);
            if let Some(mode) = target.volume_mode.filter(|m| *m != profile) {
                seen.insert(target.storage_class.clone(), (mode, profile));
            }
        }
        seen.into_iter()
            .map(|(class, (mode, profile))| {
                format!(
                    "--storage-map gives {class} volume mode {mode:?}, but Forklift's populator path \
                     uses the class's StorageProfile: sized as {profile:?} (give --volume-mode {class}={mode:?} if the profile says so)"
                )
            })
            .collect()
    }
}
