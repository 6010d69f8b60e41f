//! The VM record's man page (man/liftkit-vm-record.5) names every field ovirt-dump writes: the
//! demo lab is exported for real and each field name found in it must appear in the page.

mod pipeline;
mod support;

use serde_json::Value;
use std::collections::BTreeSet;

fn collect_keys(value: &Value, keys: &mut BTreeSet<String>) {
    match value {
        Value::Object(map) => {
            for (key, inner) in map {
                keys.insert(key.clone());
                collect_keys(inner, keys);
            }
        }
        Value::Array(items) => items.iter().for_each(|item| collect_keys(item, keys)),
        _ => {}
    }
}

#[test]
fn the_record_man_page_names_every_exported_field() {
    let page =
        std::fs::read_to_string(support::repo_root().join("man/liftkit-vm-record.5")).unwrap();
    // roff escapes and bold markers aside, field names appear as written.
    let page = page
        .replace("\\fB", " ")
        .replace("\\fR", " ")
        .replace("\\-", "-");
    let words: BTreeSet<&str> = page
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| !w.is_empty())
        .collect();
    let records = std::fs::read_to_string(pipeline::demo_records()).unwrap();
    let mut keys = BTreeSet::new();
    for line in records.lines().filter(|l| !l.trim().is_empty()) {
        collect_keys(&serde_json::from_str(line).unwrap(), &mut keys);
    }
    assert!(keys.len() > 60, "the export should be rich: {keys:?}");
    let undocumented: Vec<&String> = keys
        .iter()
        .filter(|k| !words.contains(k.as_str()))
        .collect();
    assert!(
        undocumented.is_empty(),
        "fields missing from man/liftkit-vm-record.5: {undocumented:?}"
    );
}
