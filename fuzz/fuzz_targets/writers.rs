//! The writers other programs read: nsupdate input from allocation records whose fqdn and
//! addresses are any text (a guest's), and CSV cells of any text. nsupdate gets only `update`
//! lines naming DNS names and `send`; CSV reads back as written, no text cell starting a formula.
#![no_main]

use common::format::{Column, csv_bytes};
use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value, json};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut parts = text.splitn(4, '\u{0}');
    let (fqdn, new_ip, old_ip, cell) = (
        parts.next().unwrap_or(""),
        parts.next().unwrap_or(""),
        parts.next().unwrap_or(""),
        parts.next().unwrap_or(""),
    );
    let record = json!({"fqdn": fqdn, "changed": true, "new_ipv4": new_ip, "new_ipv6": new_ip,
                        "old_ipv4": [old_ip], "old_ipv6": [old_ip]});
    let records: Vec<Map<String, Value>> = vec![record.as_object().unwrap().clone()];
    for line in ip_budget::nsupdate_text(&records, 3600).lines() {
        if line == "send" {
            continue;
        }
        let words: Vec<&str> = line.split(' ').collect();
        assert_eq!(words[0], "update", "{line:?}");
        assert!(matches!(words[1], "add" | "delete"), "{line:?}");
        assert!(common::untrusted::is_dns_name(words[2]), "{line:?}");
    }
    let columns = [Column::text("a"), Column::number("n")];
    let row = json!({"a": cell, "n": 1});
    let rows = [row.as_object().unwrap()];
    let bytes = csv_bytes(&columns, &rows).unwrap();
    let mut reader = csv::Reader::from_reader(bytes.as_slice());
    let back: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(back.len(), 1);
    let got = &back[0][0];
    assert!(
        !got.starts_with(['=', '+', '-', '@', '\t', '\r']),
        "{got:?}"
    );
    assert!(
        got == cell || got == format!("'{cell}"),
        "{got:?} from {cell:?}"
    );
});
