//! The JSON-lines record reader on any bytes: every line decodes to a VM record or to an error
//! (never a panic); a record that decodes survives a round trip unchanged (records keep what they
//! do not know), and what the tools compute from its sizes never overflows.
#![no_main]

use common::footprint::{self, CopyPath, Guest, Overheads};
use common::jsonl::Input;
use common::mapping::VolumeMode;
use common::record::parse_vm_record;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let bytes = std::io::Cursor::new(data.to_vec());
    let mut input = Input::from_reader("fuzz", Box::new(bytes));
    // The most a flag lets Forklift's and CDI's overheads be: the largest figures.
    let overheads = Overheads {
        filesystem_percent: 99,
        block_bytes: common::size::MAX_BYTES,
        cdi_global: 0.999,
        ..Overheads::default()
    };
    while let Some(line) = input.next_value::<Value>() {
        let Ok(value) = line else { continue };
        let Ok(record) = parse_vm_record(value) else {
            continue;
        };
        let again = serde_json::to_value(&record).unwrap();
        assert_eq!(parse_vm_record(again).unwrap(), record, "round trip");
        for disk in record.disks() {
            for path in [
                CopyPath::Populator,
                CopyPath::ColdDataVolume,
                CopyPath::WarmDataVolume,
            ] {
                for mode in [VolumeMode::Filesystem, VolumeMode::Block] {
                    let need = footprint::disk_need(
                        path,
                        "c",
                        mode,
                        disk.provisioned_bytes,
                        disk.actual_bytes,
                        &overheads,
                    );
                    assert!(need.pvc_bytes < u64::MAX, "{need:?} saturated");
                }
            }
        }
        let guest = Guest {
            memory_bytes: record.memory_bytes.unwrap_or(0),
            vcpus: u64::from(record.vcpus()),
            tpm: true,
            dedicated_cpu: true,
        };
        let _ = (guest.launcher_memory_bytes(), guest.quota_cpu_millis());
    }
});
