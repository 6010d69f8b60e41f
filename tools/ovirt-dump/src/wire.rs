//! Reading the engine's JSON as it really comes: numbers and booleans as strings (or as JSON
//! numbers on old engines), dates as epoch milliseconds, collections as `{"vm": [..]}` or `{ }`.
//! Every reader returns `Ok(None)` for an absent field and an error naming the field when a value
//! is there but is not what the engine's model says.

use jiff::Timestamp;
use serde_json::Value;

pub type WireResult<T> = std::result::Result<T, String>;

/// The member at a dotted path (`cpu.topology.cores`); `None` when any step is absent or null.
pub fn at<'a>(value: &'a Value, path: &str) -> Option<&'a Value> {
    let mut current = value;
    for key in path.split('.') {
        current = current.get(key)?;
    }
    if current.is_null() {
        None
    } else {
        Some(current)
    }
}

/// A text member. Numbers and booleans are accepted and written as text (ids may be numeric).
pub fn text(value: &Value, path: &str) -> WireResult<Option<String>> {
    match at(value, path) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(Value::Number(n)) => Ok(Some(n.to_string())),
        Some(Value::Bool(b)) => Ok(Some(b.to_string())),
        Some(other) => Err(format!("{path}: expected text, found {}", kind(other))),
    }
}

/// A non-empty text member: engines send `""` for unset descriptions and comments.
pub fn non_empty_text(value: &Value, path: &str) -> WireResult<Option<String>> {
    Ok(text(value, path)?.filter(|s| !s.is_empty()))
}

/// An unsigned integer, as `"1073741824"` (engines >= 4.2.3) or `1073741824` (older ones).
pub fn unsigned(value: &Value, path: &str) -> WireResult<Option<u64>> {
    match at(value, path) {
        None => Ok(None),
        Some(Value::Number(n)) => n
            .as_u64()
            .map(Some)
            .ok_or_else(|| format!("{path}: expected an unsigned integer, found {n}")),
        Some(Value::String(s)) => s
            .trim()
            .parse::<u64>()
            .map(Some)
            .map_err(|_| format!("{path}: expected an unsigned integer, found {s:?}")),
        Some(other) => Err(format!(
            "{path}: expected an unsigned integer, found {}",
            kind(other)
        )),
    }
}

/// An unsigned 32-bit integer (sockets, cores, io threads, VLAN id).
pub fn unsigned32(value: &Value, path: &str) -> WireResult<Option<u32>> {
    match unsigned(value, path)? {
        None => Ok(None),
        Some(n) => u32::try_from(n)
            .map(Some)
            .map_err(|_| format!("{path}: {n} is out of range")),
    }
}

/// A signed integer (the engine uses -1 for "unset" in places).
pub fn signed(value: &Value, path: &str) -> WireResult<Option<i64>> {
    match at(value, path) {
        None => Ok(None),
        Some(Value::Number(n)) => n
            .as_i64()
            .map(Some)
            .ok_or_else(|| format!("{path}: expected an integer, found {n}")),
        Some(Value::String(s)) => s
            .trim()
            .parse::<i64>()
            .map(Some)
            .map_err(|_| format!("{path}: expected an integer, found {s:?}")),
        Some(other) => Err(format!(
            "{path}: expected an integer, found {}",
            kind(other)
        )),
    }
}

/// A decimal (statistics), as a JSON number (`12.5`, `1.2E+3`) or as text.
pub fn decimal(value: &Value, path: &str) -> WireResult<Option<f64>> {
    match at(value, path) {
        None => Ok(None),
        Some(Value::Number(n)) => n
            .as_f64()
            .map(Some)
            .ok_or_else(|| format!("{path}: expected a number, found {n}")),
        Some(Value::String(s)) => {
            let parsed = s
                .trim()
                .parse::<f64>()
                .map_err(|_| format!("{path}: expected a number, found {s:?}"))?;
            if parsed.is_finite() {
                Ok(Some(parsed))
            } else {
                Err(format!("{path}: expected a number, found {s:?}"))
            }
        }
        Some(other) => Err(format!("{path}: expected a number, found {}", kind(other))),
    }
}

/// A boolean, as `"true"`/`"false"` (what the engine sends) or as a JSON boolean.
pub fn boolean(value: &Value, path: &str) -> WireResult<Option<bool>> {
    match at(value, path) {
        None => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(Value::String(s)) => match s.trim().to_ascii_lowercase().as_str() {
            "true" => Ok(Some(true)),
            "false" => Ok(Some(false)),
            _ => Err(format!("{path}: expected true or false, found {s:?}")),
        },
        Some(other) => Err(format!(
            "{path}: expected true or false, found {}",
            kind(other)
        )),
    }
}

/// A date: epoch milliseconds (JSON number or text) or an xsd:dateTime; written as RFC 3339 in UTC.
pub fn date(value: &Value, path: &str) -> WireResult<Option<String>> {
    let millis: i128 = match at(value, path) {
        None => return Ok(None),
        Some(Value::Number(n)) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => i128::from(i),
            (None, Some(f)) if f.is_finite() => f as i128,
            _ => return Err(format!("{path}: expected a date, found {n}")),
        },
        Some(Value::String(s)) => match s.trim().parse::<i64>() {
            Ok(i) => i128::from(i),
            Err(_) => {
                let parsed: Timestamp = (s.trim().parse())
                    .map_err(|_| format!("{path}: expected a date, found {s:?}"))?;
                return Ok(Some(parsed.to_string()));
            }
        },
        Some(other) => return Err(format!("{path}: expected a date, found {}", kind(other))),
    };
    // Timestamp's Display is RFC 3339 in UTC, its fraction without trailing zeros.
    i64::try_from(millis)
        .ok()
        .and_then(|ms| Timestamp::from_millisecond(ms).ok())
        .map(|t| Some(t.to_string()))
        .ok_or_else(|| format!("{path}: date {millis} is out of range"))
}

/// The members of a collection: `{"<outer>": {"<inner>": [..]}}` when embedded by `follow`, or the
/// list itself when `outer` is empty (`{"vm": [..]}` at the top of a response). `{ }` and an absent
/// collection are empty; a single object where a list belongs counts as a list of one.
pub fn list<'a>(value: &'a Value, outer: &str, inner: &str) -> WireResult<Vec<&'a Value>> {
    let holder = if outer.is_empty() {
        value
    } else {
        match at(value, outer) {
            None => return Ok(Vec::new()),
            Some(v) => v,
        }
    };
    let where_ = if outer.is_empty() {
        inner.to_string()
    } else {
        format!("{outer}.{inner}")
    };
    if !holder.is_object() {
        return Err(format!(
            "{}: expected an object, found {}",
            if outer.is_empty() { "response" } else { outer },
            kind(holder)
        ));
    }
    match holder.get(inner) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => {
            if let Some(bad) = items
                .iter()
                .find(|item| !item.is_object() && !item.is_string())
            {
                return Err(format!("{where_}: expected objects, found {}", kind(bad)));
            }
            Ok(items.iter().collect())
        }
        Some(single @ Value::Object(_)) => Ok(vec![single]),
        Some(other) => Err(format!("{where_}: expected a list, found {}", kind(other))),
    }
}

/// The `id` of an object or of a reference (`{"href": .., "id": ..}`) at `path`.
pub fn ref_id(value: &Value, path: &str) -> WireResult<Option<String>> {
    let id_path = if path.is_empty() {
        "id".to_string()
    } else {
        format!("{path}.id")
    };
    text(value, &id_path)
}

/// The `id` an object must have.
pub fn required_id(value: &Value, what: &str) -> WireResult<String> {
    text(value, "id")?.ok_or_else(|| format!("{what} without an id"))
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "text",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn numbers_come_as_strings_or_as_numbers() {
        // Engines >= 4.2.3 send 64-bit values as strings, older ones as JSON numbers.
        let new = json!({"memory": "1073741824", "cpu": {"topology": {"cores": "2"}}});
        let old = json!({"memory": 1073741824, "cpu": {"topology": {"cores": "2"}}});
        assert_eq!(unsigned(&new, "memory").unwrap(), Some(1073741824));
        assert_eq!(unsigned(&old, "memory").unwrap(), Some(1073741824));
        assert_eq!(unsigned32(&new, "cpu.topology.cores").unwrap(), Some(2));
        assert_eq!(signed(&json!({"m": "-1"}), "m").unwrap(), Some(-1));
    }

    #[test]
    fn absent_and_null_fields_stay_absent() {
        let vm = json!({"name": "vm1", "comment": null});
        assert_eq!(unsigned(&vm, "memory").unwrap(), None);
        assert_eq!(boolean(&vm, "usb.enabled").unwrap(), None);
        assert_eq!(text(&vm, "comment").unwrap(), None);
        assert_eq!(date(&vm, "start_time").unwrap(), None);
        assert_eq!(
            non_empty_text(&json!({"description": ""}), "description").unwrap(),
            None
        );
    }

    #[test]
    fn malformed_values_name_the_field() {
        let err = unsigned(&json!({"memory": "lots"}), "memory").unwrap_err();
        assert!(err.starts_with("memory:"), "{err}");
        let err = boolean(&json!({"stateless": "yes"}), "stateless").unwrap_err();
        assert!(err.contains("stateless"), "{err}");
        assert!(unsigned(&json!({"memory": -5}), "memory").is_err());
        assert!(text(&json!({"name": ["a"]}), "name").is_err());
    }

    #[test]
    fn booleans_as_strings_or_booleans() {
        assert_eq!(
            boolean(&json!({"stp": "false"}), "stp").unwrap(),
            Some(false)
        );
        assert_eq!(boolean(&json!({"stp": true}), "stp").unwrap(), Some(true));
    }

    #[test]
    fn dates_are_epoch_millis_and_come_out_as_rfc3339_utc() {
        // MODEL A01: "creation_time": 1472564909990
        let vm = json!({"creation_time": 1472564909990_i64, "stop_time": "1491921599642"});
        assert_eq!(
            date(&vm, "creation_time").unwrap().unwrap(),
            "2016-08-30T13:48:29.99Z"
        );
        assert_eq!(
            date(&vm, "stop_time").unwrap().unwrap(),
            "2017-04-11T14:39:59.642Z"
        );
        let whole = json!({"t": 1700000000000_i64});
        assert_eq!(date(&whole, "t").unwrap().unwrap(), "2023-11-14T22:13:20Z");
        // The XML form, should an engine ever send it in JSON.
        let iso = json!({"t": "2019-12-16T11:56:20.331+01:00"});
        assert_eq!(
            date(&iso, "t").unwrap().unwrap(),
            "2019-12-16T10:56:20.331Z"
        );
        assert!(date(&json!({"t": "yesterday"}), "t").is_err());
    }

    #[test]
    fn collections_top_level_embedded_and_empty() {
        // MODEL Network.java shape, and OSE's empty search result `{ }`.
        let networks =
            json!({"network": [{"name": "ovirtmgmt", "mtu": "0", "stp": "false", "id": "1"}]});
        assert_eq!(list(&networks, "", "network").unwrap().len(), 1);
        assert!(list(&json!({}), "", "vm").unwrap().is_empty());
        let vm = json!({"disk_attachments": {"disk_attachment": [{"id": "a"}, {"id": "b"}]}, "nics": {}});
        assert_eq!(
            list(&vm, "disk_attachments", "disk_attachment")
                .unwrap()
                .len(),
            2
        );
        assert!(list(&vm, "nics", "nic").unwrap().is_empty());
        assert!(list(&vm, "tags", "tag").unwrap().is_empty());
        let usages = json!({"usages": {"usage": ["vm"]}});
        assert_eq!(list(&usages, "usages", "usage").unwrap().len(), 1);
        assert!(list(&json!({"vm": "x"}), "", "vm").is_err());
        assert!(list(&json!([1]), "", "vm").is_err());
    }

    #[test]
    fn references_carry_ids() {
        let cluster =
            json!({"data_center": {"href": "/ovirt-engine/api/datacenters/123", "id": "123"}});
        assert_eq!(
            ref_id(&cluster, "data_center").unwrap().as_deref(),
            Some("123")
        );
        assert_eq!(ref_id(&cluster, "host").unwrap(), None);
    }
}
