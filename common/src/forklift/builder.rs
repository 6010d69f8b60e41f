//! What Forklift's oVirt builder makes of a source VM (v2.12.5
//! `pkg/controller/plan/adapter/ovirt/builder.go`, `Builder.VirtualMachine`): the firmware and the
//! NIC-to-network assignment that forklift-sim reproduces when it creates a VirtualMachine and
//! vm-verify expects to find on it.

use super::plan::Destination;

/// The firmware a migrated VM boots with (`spec.template.spec.domain.firmware.bootloader`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Firmware {
    /// `bootloader: {bios: {}}`
    Bios,
    /// `bootloader: {efi: {secureBoot: false}}`
    Efi,
}

impl Firmware {
    pub fn as_str(self) -> &'static str {
        match self {
            Firmware::Bios => "bios",
            Firmware::Efi => "efi",
        }
    }

    /// The bootloader Forklift writes for this firmware. Secure boot is always off: Forklift
    /// disables it even when the source had it on (the guest has no NVRAM data to boot with).
    pub fn bootloader(self) -> serde_json::Value {
        match self {
            Firmware::Bios => serde_json::json!({"bios": {}}),
            Firmware::Efi => serde_json::json!({"efi": {"secureBoot": false}}),
        }
    }

    /// The firmware a KubeVirt bootloader object describes (`None` when it names neither).
    pub fn of_bootloader(bootloader: &serde_json::Value) -> Option<Firmware> {
        if bootloader.get("efi").is_some_and(|v| !v.is_null()) {
            Some(Firmware::Efi)
        } else if bootloader.get("bios").is_some_and(|v| !v.is_null()) {
            Some(Firmware::Bios)
        } else {
            None
        }
    }
}

/// v2.12.5 builder.go `mapFirmware`: the VM's `bios.type`, its cluster's when `cluster_default`
/// (ovirt-sim and the engine serve `cluster_default` when the VM sets none); `q35_ovmf` and
/// `q35_secure_boot` boot EFI, anything else BIOS.
pub fn firmware(vm_bios_type: Option<&str>, cluster_bios_type: Option<&str>) -> Firmware {
    let bios = match vm_bios_type.unwrap_or("cluster_default") {
        "cluster_default" => cluster_bios_type.unwrap_or_default(),
        other => other,
    };
    match bios {
        "q35_ovmf" | "q35_secure_boot" => Firmware::Efi,
        _ => Firmware::Bios,
    }
}

/// v2.12.5 builder.go `mapNetworks` through `network_helper.go` `resolveNICMappings`: per NIC (in
/// the VM's NIC order), the map entries whose source is the NIC's network, `ignored` ones left
/// out (`buildOvirtNICResolver`); `adapter/base/network.go` `AllocateNetwork` then takes the first
/// non-Multus destination, else the first NAD this VM has not used yet. A NIC that gets none is
/// not on the VirtualMachine. The VM's networks are named `net-0`, `net-1`, ... in the order of
/// the NICs that got one.
pub fn assign_networks<'a>(nics: &[Vec<Destination<'a>>]) -> Vec<Option<Destination<'a>>> {
    let mut used: Vec<String> = Vec::new();
    nics.iter()
        .map(|pairs| {
            let pairs: Vec<&Destination> = pairs.iter().filter(|p| p.kind != "ignored").collect();
            if let Some(other) = pairs.iter().find(|p| p.kind != "multus") {
                return Some(**other);
            }
            let key = |p: &Destination| {
                if p.namespace.is_empty() {
                    p.name.to_string()
                } else {
                    format!("{}/{}", p.namespace, p.name)
                }
            };
            let free = pairs.iter().find(|p| !used.contains(&key(p)))?;
            used.push(key(free));
            Some(**free)
        })
        .collect()
}

/// The Multus network name Forklift writes for a NAD (`path.Join(namespace, name)`).
pub fn multus_network_name(destination: &Destination) -> String {
    if destination.namespace.is_empty() {
        destination.name.to_string()
    } else {
        format!("{}/{}", destination.namespace, destination.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn firmware_as_forklift_maps_it() {
        assert_eq!(firmware(Some("q35_ovmf"), None), Firmware::Efi);
        assert_eq!(firmware(Some("q35_secure_boot"), None), Firmware::Efi);
        assert_eq!(
            firmware(Some("q35_sea_bios"), Some("q35_ovmf")),
            Firmware::Bios
        );
        assert_eq!(firmware(Some("i440fx_sea_bios"), None), Firmware::Bios);
        assert_eq!(firmware(None, Some("q35_ovmf")), Firmware::Efi);
        assert_eq!(
            firmware(Some("cluster_default"), Some("q35_sea_bios")),
            Firmware::Bios
        );
        assert_eq!(firmware(None, None), Firmware::Bios);
    }

    #[test]
    fn networks_as_forklift_assigns_them() {
        let d = |kind, namespace, name| Destination {
            kind,
            namespace,
            name,
        };
        let nad = d("multus", "ns", "a");
        let pod = d("pod", "", "");
        // Two NICs on one source network with one NAD: the second gets none.
        let got = assign_networks(&[vec![nad], vec![nad], vec![pod], vec![d("ignored", "", "")]]);
        assert_eq!(got, vec![Some(nad), None, Some(pod), None]);
        let pool = vec![nad, d("multus", "ns", "b")];
        let got = assign_networks(&[pool.clone(), pool]);
        assert_eq!(got[1].map(|x| x.name), Some("b"));
        assert_eq!(multus_network_name(&nad), "ns/a");
    }
}
