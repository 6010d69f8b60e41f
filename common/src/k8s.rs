//! Kubernetes objects as liftkit's manifest tools write them: a deterministic order, and either JSON
//! lines (one object a line, which `kubectl apply -f -` reads) or a multi-document YAML stream.

use crate::error::{Error, Result, write_error};
use serde_json::{Map, Value};
use std::io::Write;

/// The label every object written by liftkit carries.
pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";
pub const MANAGED_BY: &str = "liftkit";

/// How objects are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum ObjectFormat {
    /// One JSON object per line.
    #[default]
    Jsonl,
    /// A multi-document YAML stream (`---` before each object).
    Yaml,
}

/// Where a kind goes in the output: what others depend on comes first, so that a plain
/// `kubectl apply -f` creates namespaces before what lives in them.
fn kind_rank(kind: &str) -> u32 {
    match kind {
        "Namespace" => 0,
        "Secret" => 1,
        "Role" => 2,
        "RoleBinding" => 3,
        // Defaults before the quota that needs them, so no pod slips in between.
        "LimitRange" => 4,
        "ResourceQuota" => 5,
        "Provider" => 6,
        "NetworkMap" => 7,
        "StorageMap" => 8,
        "Plan" => 9,
        _ => 10,
    }
}

fn sort_key(object: &Value) -> (u32, String, String, String) {
    let kind = object["kind"].as_str().unwrap_or_default();
    let meta = &object["metadata"];
    (
        kind_rank(kind),
        kind.to_string(),
        meta["namespace"].as_str().unwrap_or_default().to_string(),
        meta["name"].as_str().unwrap_or_default().to_string(),
    )
}

/// Sorts objects by kind (dependencies first), then namespace, then name; stable for ties.
pub fn sort_objects(objects: &mut [Value]) {
    objects.sort_by_cached_key(sort_key);
}

/// Writes objects in the chosen format; `name` names the output in errors.
pub fn write_objects(
    out: &mut dyn Write,
    name: &str,
    objects: &[Value],
    format: ObjectFormat,
) -> Result<()> {
    let mut text = String::new();
    for object in objects {
        match format {
            ObjectFormat::Jsonl => {
                let line = serde_json::to_string(object).map_err(|e| {
                    Error::new(
                        crate::ExitCode::Software,
                        format!("{name}: cannot encode object: {e}"),
                    )
                })?;
                text.push_str(&line);
                text.push('\n');
            }
            ObjectFormat::Yaml => text.push_str(&to_yaml_document(object)),
        }
    }
    out.write_all(text.as_bytes())
        .map_err(|e| write_error(name, &e))
}

/// One YAML document (`---` line, then the value in block style).
pub fn to_yaml_document(value: &Value) -> String {
    let mut out = String::from("---\n");
    match value {
        Value::Object(map) if !map.is_empty() => emit_map(&mut out, map, 0),
        Value::Array(items) if !items.is_empty() => emit_seq(&mut out, items, 0),
        other => {
            out.push_str(&scalar(other));
            out.push('\n');
        }
    }
    out
}

fn indent(out: &mut String, level: usize) {
    out.extend(std::iter::repeat_n(' ', level));
}

fn is_block(value: &Value) -> bool {
    match value {
        Value::Object(map) => !map.is_empty(),
        Value::Array(items) => !items.is_empty(),
        _ => false,
    }
}

fn emit_map(out: &mut String, map: &Map<String, Value>, level: usize) {
    for (i, (key, value)) in map.iter().enumerate() {
        // The first key of a map that is a sequence item sits after "- ".
        if i > 0 || !out.ends_with("- ") {
            indent(out, level);
        }
        out.push_str(&quote_if_needed(key));
        out.push(':');
        emit_value_after_key(out, value, level);
    }
}

fn emit_value_after_key(out: &mut String, value: &Value, level: usize) {
    match value {
        Value::Object(map) if is_block(value) => {
            out.push('\n');
            emit_map(out, map, level + 2);
        }
        Value::Array(items) if is_block(value) => {
            out.push('\n');
            emit_seq(out, items, level + 2);
        }
        other => {
            out.push(' ');
            out.push_str(&scalar(other));
            out.push('\n');
        }
    }
}

fn emit_seq(out: &mut String, items: &[Value], level: usize) {
    for item in items {
        indent(out, level);
        match item {
            Value::Object(map) if is_block(item) => {
                out.push_str("- ");
                emit_map(out, map, level + 2);
            }
            Value::Array(inner) if is_block(item) => {
                out.push_str("-\n");
                emit_seq(out, inner, level + 2);
            }
            other => {
                out.push_str("- ");
                out.push_str(&scalar(other));
                out.push('\n');
            }
        }
    }
}

fn scalar(value: &Value) -> String {
    match value {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => quote_if_needed(s),
        Value::Object(_) => "{}".into(),
        Value::Array(_) => "[]".into(),
    }
}

/// Words YAML 1.1 or 1.2 parsers read as something other than a string.
const RESERVED: &[&str] = &[
    "true", "false", "yes", "no", "on", "off", "y", "n", "null", "~", ".inf", "-.inf", "+.inf",
    ".nan",
];

/// A string as a plain scalar where that is unambiguous, else double-quoted with escapes.
fn quote_if_needed(s: &str) -> String {
    if is_plain_safe(s) {
        s.to_string()
    } else {
        double_quoted(s)
    }
}

fn is_plain_safe(s: &str) -> bool {
    let Some(first) = s.chars().next() else {
        return false;
    };
    if !(first.is_ascii_alphanumeric() || first == '/' || first == '_') {
        return false;
    }
    if s.ends_with(' ') || RESERVED.contains(&s.to_ascii_lowercase().as_str()) {
        return false;
    }
    // Anything that starts like a number and holds only number-ish characters is quoted, so that
    // no parser reads 1e3, 0x1F, 0o17, 1_000 or 2001-12-14 as a number or a timestamp.
    let numberish = |c: char| c.is_ascii_hexdigit() || "xXoO._+-:".contains(c);
    if first.is_ascii_digit() && s.chars().all(numberish) {
        return false;
    }
    s.chars()
        .all(|c| c.is_ascii_alphanumeric() || "-_./@+= ".contains(c))
        && !s.contains("  ")
}

fn double_quoted(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            // Line and paragraph separators are line breaks to YAML 1.1 parsers.
            '\u{2028}' | '\u{2029}' => out.push_str(&format!("\\u{:04x}", c as u32)),
            // Not printable in YAML: C0/C1 controls, DEL, BOM and the non-characters.
            c if (c as u32) < 0x20
                || (0x7f..=0x9f).contains(&(c as u32))
                || c == '\u{feff}'
                || c == '\u{fffe}'
                || c == '\u{ffff}' =>
            {
                out.push_str(&format!("\\u{:04x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A map with sorted keys, for labels and annotations built from unordered sources.
pub fn sorted_map<K: AsRef<str>, V: Into<Value>>(
    entries: impl IntoIterator<Item = (K, V)>,
) -> Value {
    let mut pairs: Vec<(String, Value)> = entries
        .into_iter()
        .map(|(k, v)| (k.as_ref().to_string(), v.into()))
        .collect();
    pairs.sort_by(|a, b| a.0.cmp(&b.0));
    Value::Object(pairs.into_iter().collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn yaml_block_style() {
        let value = json!({
            "apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": "web", "labels": {"app.kubernetes.io/managed-by": "liftkit"}, "annotations": {}},
            "subjects": [{"kind": "User", "name": "alice"}, {"kind": "Group", "name": "true"}],
            "list": [[1, 2], []], "n": null, "port": 8080, "ok": false,
        });
        let expected = "---\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: web\n  labels:\n    \
            app.kubernetes.io/managed-by: liftkit\n  annotations: {}\nsubjects:\n  - kind: User\n    name: alice\n  \
            - kind: Group\n    name: \"true\"\nlist:\n  -\n    - 1\n    - 2\n  - []\n\"n\": null\nport: 8080\nok: false\n";
        assert_eq!(to_yaml_document(&value), expected);
    }

    #[test]
    fn ambiguous_strings_are_quoted() {
        for s in [
            "",
            "yes",
            "No",
            "null",
            "~",
            "1e3",
            "0x1F",
            "2001-12-14",
            "10",
            "1.5",
            "-x",
            " a",
            "a ",
            "a: b",
            "#c",
            "line\nbreak",
            "quote\"d",
            "ctl\u{7f}",
            "https://e/x",
            "*a",
            "&a",
            "!t",
            "[x]",
            "{x}",
            "'q'",
            "%p",
            "`b",
        ] {
            assert!(
                quote_if_needed(s).starts_with('"'),
                "{s:?} should be quoted"
            );
        }
        for s in [
            "web",
            "alice@example.com",
            "10Gi",
            "app.kubernetes.io/managed-by",
            "ca.crt",
            "plan-web-1",
            "Created by liftkit",
        ] {
            assert_eq!(quote_if_needed(s), s, "{s:?} can be plain");
        }
        assert_eq!(double_quoted("a\u{1}b\\"), "\"a\\u0001b\\\\\"");
    }

    #[test]
    fn objects_sort_by_kind_namespace_name() {
        let mut objects = vec![
            json!({"kind": "RoleBinding", "metadata": {"namespace": "b", "name": "x"}}),
            json!({"kind": "RoleBinding", "metadata": {"namespace": "a", "name": "y"}}),
            json!({"kind": "Namespace", "metadata": {"name": "b"}}),
            json!({"kind": "Plan", "metadata": {"namespace": "m", "name": "p"}}),
        ];
        sort_objects(&mut objects);
        let names: Vec<&str> = objects
            .iter()
            .map(|o| o["metadata"]["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["b", "y", "x", "p"]);
    }
}
