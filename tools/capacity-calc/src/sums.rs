//! The sums of one group, and the groups of a report. The copy peak keeps, per group, the largest
//! --max-vm-inflight VMs' copy-time bytes (Forklift copies all disks of a VM at once and runs at
//! most MAX_VM_INFLIGHT VMs per provider), so memory stays one small heap per group and class.

use crate::plan::{PlannedVm, SizedDisk, SizedVm};
use common::record::NamedRef;
use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, HashSet};

/// The group of records that lack the key (no namespace, no owners, no disks).
pub const NONE: &str = "(none)";

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, clap::ValueEnum)]
pub enum Key {
    Namespace,
    Owner,
    DataCenter,
    Cluster,
    StorageDomain,
    StorageClass,
    /// Each VM on its own (its name): a row per VM.
    Vm,
    /// Each disk on its own (its disk id): a row per disk, the PVC Forklift creates for it.
    Disk,
}

impl Key {
    pub fn column(self) -> &'static str {
        match self {
            Key::Namespace => "namespace",
            Key::Owner => "owner",
            Key::DataCenter => "data_center",
            Key::Cluster => "cluster",
            Key::StorageDomain => "storage_domain",
            Key::StorageClass => "storage_class",
            Key::Vm => "vm",
            Key::Disk => "disk",
        }
    }
    fn per_disk(self) -> bool {
        matches!(self, Key::StorageDomain | Key::StorageClass | Key::Disk)
    }
}

/// The sum of the `n` largest values pushed (`n` is the caller's, the same on every push).
#[derive(Debug, Default, Clone)]
pub struct Largest {
    heap: BinaryHeap<Reverse<u64>>,
    pub sum: u64,
}

impl Largest {
    pub fn push(&mut self, n: usize, value: u64) {
        if value == 0 || n == 0 {
            return;
        }
        if self.heap.len() < n {
            self.heap.push(Reverse(value));
            self.sum = self.sum.saturating_add(value);
        } else if let Some(mut smallest) = self.heap.peek_mut()
            && smallest.0 < value
        {
            self.sum = (self.sum - smallest.0).saturating_add(value);
            smallest.0 = value;
        }
    }
}

/// One group's sums.
#[derive(Debug, Default, Clone)]
pub struct Sums {
    shared_disks: HashSet<String>,
    pub vms: u64,
    pub vcpus: u64,
    pub memory_bytes: u64,
    pub disks: u64,
    pub provisioned_bytes: u64,
    pub used_bytes: u64,
    pub lun_disks: u64,
    pub lun_bytes: u64,
    /// The PVCs the VMs keep, per class.
    pub pvc_bytes: BTreeMap<String, u64>,
    /// Copy-time PVC bytes (prime or scratch) of the VMs that can be in flight together, per
    /// class and over all classes.
    copy_by_class: BTreeMap<String, Largest>,
    copy_total: Largest,
    /// Copy pods (one per disk) of the VMs that can be in flight together.
    pub copy_pods: Largest,
    /// VMs with a disk to copy among those that can be in flight together (each has one PVC
    /// consumer pod on the populator path).
    pub copying_vms: Largest,
    /// What the launcher pods request (KubeVirt), and the CPU the quota allows them.
    pub launcher_memory_bytes: u64,
    pub launcher_cpu_millis: u64,
}

impl Sums {
    /// Adds a VM with the disks `disks` (indexes into its disk list) that fall in this group. The
    /// caller adds each VM once per group (see `Report::add`): no set of VM ids is kept.
    pub fn add(&mut self, planned: &PlannedVm, disks: &[usize], inflight: usize) {
        let vm = &planned.vm;
        self.vms += 1;
        self.vcpus = self.vcpus.saturating_add(u64::from(vm.vcpus()));
        self.memory_bytes = self
            .memory_bytes
            .saturating_add(vm.memory_bytes.unwrap_or(0));
        self.launcher_memory_bytes = self
            .launcher_memory_bytes
            .saturating_add(planned.guest.launcher_memory_bytes());
        self.launcher_cpu_millis = self
            .launcher_cpu_millis
            .saturating_add(planned.guest.quota_cpu_millis());
        // This VM's copy-time bytes in this group, per class (a VM has few classes).
        let mut copy: Vec<(&str, u64)> = Vec::new();
        let mut pods = 0;
        for &index in disks {
            let (disk, planned_disk) = (&vm.disks()[index], &planned.disks[index]);
            if !self.first_time(disk) {
                continue;
            }
            if disk.is_lun() {
                self.lun_disks += 1;
                self.lun_bytes = self.lun_bytes.saturating_add(disk.lun_bytes());
                continue;
            }
            self.disks += 1;
            pods += 1;
            self.provisioned_bytes = self
                .provisioned_bytes
                .saturating_add(disk.provisioned_bytes.unwrap_or(0));
            self.used_bytes = self
                .used_bytes
                .saturating_add(disk.actual_bytes.unwrap_or(0));
            let (class, need) = (planned_disk.class.as_str(), planned_disk.need);
            add_to(&mut self.pvc_bytes, class, need.pvc_bytes);
            match copy.iter_mut().find(|(c, _)| *c == class) {
                Some((_, bytes)) => *bytes = bytes.saturating_add(need.copy_bytes),
                None => copy.push((class, need.copy_bytes)),
            }
        }
        let mut total = 0u64;
        for (class, bytes) in copy {
            total = total.saturating_add(bytes);
            match self.copy_by_class.get_mut(class) {
                Some(largest) => largest.push(inflight, bytes),
                None => {
                    let mut largest = Largest::default();
                    largest.push(inflight, bytes);
                    self.copy_by_class.insert(class.to_string(), largest);
                }
            }
        }
        self.copy_total.push(inflight, total);
        self.copy_pods.push(inflight, pods);
        self.copying_vms.push(inflight, u64::from(pods > 0));
    }

    /// Whether a disk counts here: only shared disks can come twice, so only their ids are kept.
    fn first_time(&mut self, disk: &SizedDisk) -> bool {
        if disk.shareable != Some(true) {
            return true;
        }
        let id = disk.disk_id.as_deref().unwrap_or(&disk.attachment_id);
        self.shared_disks.insert(id.to_string())
    }

    pub fn pvc_total_bytes(&self) -> u64 {
        self.pvc_bytes
            .values()
            .fold(0, |sum, b| sum.saturating_add(*b))
    }

    /// Per class: the PVCs kept plus the copy-time PVCs of the class's largest VMs in flight.
    pub fn peak_pvc_bytes(&self) -> BTreeMap<String, u64> {
        self.pvc_bytes
            .iter()
            .map(|(class, bytes)| {
                let copy = self.copy_by_class.get(class).map_or(0, |l| l.sum);
                (class.clone(), bytes.saturating_add(copy))
            })
            .collect()
    }

    /// Over all classes: the PVCs kept plus the copy-time PVCs of the largest VMs in flight.
    pub fn peak_pvc_total_bytes(&self) -> u64 {
        self.pvc_total_bytes().saturating_add(self.copy_total.sum)
    }
}

fn add_to(map: &mut BTreeMap<String, u64>, class: &str, bytes: u64) {
    match map.get_mut(class) {
        Some(sum) => *sum = sum.saturating_add(bytes),
        None => {
            map.insert(class.to_string(), bytes);
        }
    }
}

/// A reference's name, or its id when the engine gave no name.
fn label(r: &NamedRef) -> &str {
    r.name.as_deref().unwrap_or(&r.id)
}

fn vm_key_values(vm: &SizedVm, key: Key) -> Vec<String> {
    let named = |n: Option<&str>| vec![n.unwrap_or(NONE).to_string()];
    match key {
        Key::Namespace => named(vm.target_namespace.as_deref()),
        Key::Owner => {
            let owners: BTreeSet<String> = vm
                .owners
                .iter()
                .flatten()
                .map(|o| o.principal.to_string())
                .collect();
            if owners.is_empty() {
                named(None)
            } else {
                owners.into_iter().collect()
            }
        }
        Key::DataCenter => named(vm.data_center.as_ref().map(label)),
        Key::Cluster => named(vm.cluster.as_ref().map(label)),
        Key::Vm => vec![vm.name.clone()],
        Key::StorageDomain | Key::StorageClass | Key::Disk => {
            unreachable!("disk keys are per disk")
        }
    }
}

fn disk_key_value(disk: &SizedDisk, class: &str, key: Key) -> String {
    match key {
        Key::StorageDomain => match &disk.storage_domain {
            Some(sd) => label(sd).to_string(),
            None if disk.is_lun() => "(lun)".into(),
            None => NONE.into(),
        },
        Key::StorageClass if disk.is_lun() => "(lun)".into(),
        Key::StorageClass => class.to_string(),
        Key::Disk => disk
            .disk_id
            .as_deref()
            .unwrap_or(&disk.attachment_id)
            .to_string(),
        _ => unreachable!("VM keys are per VM"),
    }
}

/// Every key combination of `vm`'s VM-level keys.
fn vm_groups(vm: &SizedVm, keys: &[Key]) -> Vec<Vec<String>> {
    let mut groups = vec![Vec::new()];
    for key in keys.iter().filter(|k| !k.per_disk()) {
        let values = vm_key_values(vm, *key);
        groups = groups
            .iter()
            .flat_map(|g| {
                values
                    .iter()
                    .map(move |v| [g.clone(), vec![v.clone()]].concat())
            })
            .collect();
    }
    groups
}

/// Sums per group; the key order is `keys` with VM-level keys first, then disk-level keys.
pub struct Report {
    pub keys: Vec<Key>,
    pub groups: BTreeMap<Vec<String>, Sums>,
    pub totals: Sums,
    pub vms: u64,
    /// VMs in flight together (Forklift's MAX_VM_INFLIGHT).
    pub inflight: usize,
}

impl Report {
    pub fn new(keys: &[Key], inflight: usize) -> Self {
        let mut ordered: Vec<Key> = keys.iter().copied().filter(|k| !k.per_disk()).collect();
        ordered.extend(keys.iter().copied().filter(|k| k.per_disk()));
        let mut seen = BTreeSet::new();
        ordered.retain(|k| seen.insert(*k));
        Report {
            keys: ordered,
            groups: BTreeMap::new(),
            totals: Sums::default(),
            vms: 0,
            inflight,
        }
    }

    pub fn add(&mut self, planned: &PlannedVm) {
        let vm = &planned.vm;
        self.vms += 1;
        let all: Vec<usize> = (0..vm.disks().len()).collect();
        self.totals.add(planned, &all, self.inflight);
        let disk_keys: Vec<Key> = self.keys.iter().copied().filter(|k| k.per_disk()).collect();
        for group in vm_groups(vm, &self.keys) {
            if disk_keys.is_empty() {
                let sums = self.groups.entry(group).or_default();
                sums.add(planned, &all, self.inflight);
                continue;
            }
            if all.is_empty() {
                let key = [group, vec![NONE.to_string(); disk_keys.len()]].concat();
                self.groups
                    .entry(key)
                    .or_default()
                    .add(planned, &[], self.inflight);
                continue;
            }
            // A VM with several disks in one group counts once there.
            let mut by_key: BTreeMap<Vec<String>, Vec<usize>> = BTreeMap::new();
            for (index, (disk, planned_disk)) in vm.disks().iter().zip(&planned.disks).enumerate() {
                let values = disk_keys
                    .iter()
                    .map(|k| disk_key_value(disk, &planned_disk.class, *k));
                let key: Vec<String> = group.iter().cloned().chain(values).collect();
                by_key.entry(key).or_default().push(index);
            }
            for (key, disks) in by_key {
                let sums = self.groups.entry(key).or_default();
                sums.add(planned, &disks, self.inflight);
            }
        }
    }

    /// Every storage class any group needs, sorted.
    pub fn classes(&self) -> BTreeSet<String> {
        self.totals.pvc_bytes.keys().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn largest_keeps_the_sum_of_the_n_largest() {
        let mut largest = Largest::default();
        for value in [5, 1, 9, 0, 7, 3] {
            largest.push(2, value);
        }
        assert_eq!(largest.sum, 16);
        let mut one = Largest::default();
        one.push(3, 4);
        assert_eq!(one.sum, 4);
    }
}
