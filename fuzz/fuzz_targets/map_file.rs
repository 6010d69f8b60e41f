//! Mapping files on any text: every line is a rule or an error naming it (never a panic), and a
//! file that loads gives rules a lookup can use.
#![no_main]

use common::mapping::{Mappings, SourceObject};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut maps = Mappings::default();
    if maps.read_text("fuzz.map", text).is_err() {
        return;
    }
    let object = SourceObject {
        id: Some("6f1f3b0e-1c2d-4e5f-8a9b-0c1d2e3f4a5b"),
        data_center: Some("dc1"),
        name: Some("nfs"),
    };
    let _ = maps.storage.lookup(&object);
    let _ = maps.network.lookup(&object);
});
