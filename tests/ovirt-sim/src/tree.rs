//! One tree per answer, rendered to the engine's JSON (Jackson, pretty) or XML (JAXB), so the two
//! formats can never disagree about content.

use jiff::Timestamp;
use jiff::tz::{Offset, TimeZone};
use std::fmt::Write as _;

/// A value in the engine's model. Ints, longs and booleans are JSON strings (engines >= 4.2.3);
/// longs are JSON numbers in legacy mode; dates are epoch ms in JSON and xsd:dateTime in XML.
#[derive(Debug, Clone)]
pub enum Node {
    Str(String),
    Int(i64),
    Long(i64),
    Bool(bool),
    /// Epoch milliseconds.
    Date(i64),
    /// xs:decimal, already formatted; a JSON number.
    Dec(String),
    Obj(Obj),
    /// A repeated element (`link`, `vm` in `vms`, `usage`): a JSON array.
    List(Vec<Node>),
}

#[derive(Debug, Clone, Default)]
pub struct Obj {
    pub href: Option<String>,
    pub id: Option<String>,
    /// Only on `link`: an XML attribute like href.
    pub rel: Option<String>,
    pub fields: Vec<(&'static str, Node)>,
}

impl Obj {
    pub fn new() -> Self {
        Obj::default()
    }
    pub fn with_ref(href: impl Into<String>, id: impl Into<String>) -> Self {
        Obj {
            href: Some(href.into()),
            id: Some(id.into()),
            ..Obj::default()
        }
    }
    pub fn with_id(id: impl Into<String>) -> Self {
        Obj {
            id: Some(id.into()),
            ..Obj::default()
        }
    }
    /// `<link href="..." rel="..."/>`
    pub fn link(href: impl Into<String>, rel: impl Into<String>) -> Self {
        Obj {
            href: Some(href.into()),
            rel: Some(rel.into()),
            ..Obj::default()
        }
    }
    pub fn add(&mut self, name: &'static str, node: Node) -> &mut Self {
        self.fields.push((name, node));
        self
    }
    pub fn s(&mut self, name: &'static str, v: impl Into<String>) -> &mut Self {
        self.add(name, Node::Str(v.into()))
    }
    pub fn int(&mut self, name: &'static str, v: i64) -> &mut Self {
        self.add(name, Node::Int(v))
    }
    pub fn long(&mut self, name: &'static str, v: u64) -> &mut Self {
        self.add(name, Node::Long(v as i64))
    }
    pub fn b(&mut self, name: &'static str, v: bool) -> &mut Self {
        self.add(name, Node::Bool(v))
    }
    pub fn obj(&mut self, name: &'static str, o: Obj) -> &mut Self {
        self.add(name, Node::Obj(o))
    }
    pub fn date(&mut self, name: &'static str, rfc3339: &str) -> &mut Self {
        if let Some(ms) = parse_time(rfc3339) {
            self.add(name, Node::Date(ms));
        }
        self
    }
    pub fn get_mut(&mut self, name: &str) -> Option<&mut Node> {
        self.fields
            .iter_mut()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v)
    }
    /// Sets a member, replacing one of the same name (a ref replaced by the followed object).
    pub fn set(&mut self, name: &'static str, node: Node) {
        match self.get_mut(name) {
            Some(slot) => *slot = node,
            None => self.fields.push((name, node)),
        }
    }
}

/// An object holding one member, in one call: `wrap("enabled", Node::Bool(true))`.
pub fn wrap(name: &'static str, node: Node) -> Obj {
    let mut o = Obj::new();
    o.add(name, node);
    o
}

/// A collection: `{"vm": [...]}`, or `{ }` when empty (the list is null, and nulls are omitted).
pub fn collection(singular: &'static str, items: Vec<Node>) -> Obj {
    let mut o = Obj::new();
    if !items.is_empty() {
        o.add(singular, Node::List(items));
    }
    o
}

pub fn parse_time(s: &str) -> Option<i64> {
    Some(s.parse::<Timestamp>().ok()?.as_millisecond())
}

/// `+HH:MM` or `-HH:MM`, up to 25:59 either way (as `time`'s `UtcOffset::from_hms` took it).
pub fn parse_offset(s: &str) -> Option<Offset> {
    let (sign, rest) = match s.as_bytes().first()? {
        b'+' => (1, &s[1..]),
        b'-' => (-1, &s[1..]),
        _ => return None,
    };
    let (h, m) = rest.split_once(':')?;
    let h: i32 = h.parse().ok()?;
    let m: i32 = m.parse().ok()?;
    if !(0..60).contains(&m) || h < 0 {
        return None;
    }
    Offset::from_seconds(sign * (h * 3600 + m * 60)).ok()
}

/// xsd:dateTime as JAXB writes it: `2019-10-15T12:12:12.505+02:00`.
pub fn xml_date(ms: i64, offset: Offset) -> String {
    (Timestamp::from_millisecond(ms).unwrap_or(Timestamp::UNIX_EPOCH))
        .to_zoned(TimeZone::fixed(offset))
        .strftime("%Y-%m-%dT%H:%M:%S%.3f%:z")
        .to_string()
}

#[derive(Debug, Clone, Copy)]
pub struct RenderOpts {
    /// 64-bit fields as JSON numbers, as engines before 4.2.3 wrote them.
    pub legacy_numbers: bool,
    pub offset: Offset,
}

// Jackson writes the Identified members after the type's own ones.
const JSON_TAIL: [&str; 7] = [
    "actions",
    "name",
    "description",
    "comment",
    "href",
    "id",
    "link",
];

pub fn to_json(root: &Obj, opts: &RenderOpts) -> String {
    let mut out = String::with_capacity(4096);
    json_obj(&mut out, root, 0, opts);
    out
}

fn indent(out: &mut String, level: usize) {
    for _ in 0..level {
        out.push_str("  ");
    }
}

fn json_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

fn json_obj(out: &mut String, o: &Obj, level: usize, opts: &RenderOpts) {
    let mut members: Vec<(&str, JsonItem)> = Vec::with_capacity(o.fields.len() + 2);
    for (name, node) in &o.fields {
        if !JSON_TAIL.contains(name) {
            members.push((name, JsonItem::Node(node)));
        }
    }
    for tail in JSON_TAIL {
        match tail {
            "href" => {
                if let Some(h) = &o.href {
                    members.push(("href", JsonItem::Text(h)));
                }
            }
            "id" => {
                if let Some(i) = &o.id {
                    members.push(("id", JsonItem::Text(i)));
                }
                if let Some(r) = &o.rel {
                    members.push(("rel", JsonItem::Text(r)));
                }
            }
            _ => {
                for (name, node) in &o.fields {
                    if *name == tail {
                        members.push((name, JsonItem::Node(node)));
                    }
                }
            }
        }
    }
    if members.is_empty() {
        out.push_str("{ }");
        return;
    }
    out.push('{');
    for (i, (name, item)) in members.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push('\n');
        indent(out, level + 1);
        json_str(out, name);
        out.push_str(" : ");
        match item {
            JsonItem::Text(t) => json_str(out, t),
            JsonItem::Node(n) => json_node(out, n, level + 1, opts),
        }
    }
    out.push('\n');
    indent(out, level);
    out.push('}');
}

enum JsonItem<'a> {
    Text(&'a str),
    Node(&'a Node),
}

fn json_node(out: &mut String, n: &Node, level: usize, opts: &RenderOpts) {
    match n {
        Node::Str(s) => json_str(out, s),
        Node::Int(i) => {
            let _ = write!(out, "\"{i}\"");
        }
        Node::Long(i) if opts.legacy_numbers => {
            let _ = write!(out, "{i}");
        }
        Node::Long(i) => {
            let _ = write!(out, "\"{i}\"");
        }
        Node::Bool(b) => {
            let _ = write!(out, "\"{b}\"");
        }
        Node::Date(ms) => {
            let _ = write!(out, "{ms}");
        }
        Node::Dec(d) => out.push_str(d),
        Node::Obj(o) => json_obj(out, o, level, opts),
        Node::List(items) => {
            if items.is_empty() {
                out.push_str("[ ]");
                return;
            }
            out.push_str("[ ");
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                json_node(out, item, level, opts);
            }
            out.push_str(" ]");
        }
    }
}

pub fn to_xml(root_name: &str, root: &Obj, opts: &RenderOpts) -> String {
    let mut out = String::with_capacity(8192);
    out.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>\n");
    xml_obj(&mut out, root_name, root, 0, opts);
    out
}

fn xml_escape(out: &mut String, s: &str, attr: bool) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' if attr => out.push_str("&quot;"),
            c => out.push(c),
        }
    }
}

fn xml_indent(out: &mut String, level: usize) {
    for _ in 0..level {
        out.push_str("    ");
    }
}

fn xml_obj(out: &mut String, name: &str, o: &Obj, level: usize, opts: &RenderOpts) {
    xml_indent(out, level);
    out.push('<');
    out.push_str(name);
    if let Some(h) = &o.href {
        out.push_str(" href=\"");
        xml_escape(out, h, true);
        out.push('"');
    }
    if let Some(i) = &o.id {
        out.push_str(" id=\"");
        xml_escape(out, i, true);
        out.push('"');
    }
    if let Some(r) = &o.rel {
        out.push_str(" rel=\"");
        xml_escape(out, r, true);
        out.push('"');
    }
    if o.fields.is_empty() {
        out.push_str("/>\n");
        return;
    }
    out.push_str(">\n");
    for (field, node) in &o.fields {
        xml_node(out, field, node, level + 1, opts);
    }
    xml_indent(out, level);
    out.push_str("</");
    out.push_str(name);
    out.push_str(">\n");
}

fn xml_leaf(out: &mut String, name: &str, text: &str, level: usize) {
    xml_indent(out, level);
    let _ = write!(out, "<{name}>");
    xml_escape(out, text, false);
    let _ = writeln!(out, "</{name}>");
}

fn xml_node(out: &mut String, name: &str, n: &Node, level: usize, opts: &RenderOpts) {
    match n {
        Node::Str(s) => xml_leaf(out, name, s, level),
        Node::Int(i) | Node::Long(i) => xml_leaf(out, name, &i.to_string(), level),
        Node::Bool(b) => xml_leaf(out, name, if *b { "true" } else { "false" }, level),
        Node::Date(ms) => xml_leaf(out, name, &xml_date(*ms, opts.offset), level),
        Node::Dec(d) => xml_leaf(out, name, d, level),
        Node::Obj(o) => xml_obj(out, name, o, level, opts),
        Node::List(items) => {
            for item in items {
                xml_node(out, name, item, level, opts);
            }
        }
    }
}

/// xs:decimal as the engine builds it from a double (two significant digits, plain form).
pub fn decimal(v: f64) -> String {
    if v == 0.0 || !v.is_finite() {
        return "0".into();
    }
    if v.fract() == 0.0 && v.abs() < 100.0 {
        return format!("{}", v as i64);
    }
    let magnitude = v.abs().log10().floor() as i32;
    let decimals = (1 - magnitude).max(0) as usize;
    let s = format!("{v:.decimals$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts() -> RenderOpts {
        RenderOpts {
            legacy_numbers: false,
            offset: Offset::from_hours(2).unwrap(),
        }
    }

    #[test]
    fn jackson_shapes() {
        let mut net = Obj::with_ref("/ovirt-engine/api/networks/456", "456");
        net.s("name", "ovirtmgmt");
        net.b("stp", false);
        net.int("mtu", 0);
        net.obj(
            "usages",
            wrap("usage", Node::List(vec![Node::Str("vm".into())])),
        );
        let root = collection("network", vec![Node::Obj(net)]);
        let json = to_json(&root, &opts());
        assert!(
            json.starts_with("{\n  \"network\" : [ {\n    \"stp\" : \"false\""),
            "{json}"
        );
        assert!(json.contains("\"usage\" : [ \"vm\" ]"));
        assert!(json.ends_with("  } ]\n}"));
        assert_eq!(to_json(&collection("nic", vec![]), &opts()), "{ }");
        assert!(to_xml("nics", &collection("nic", vec![]), &opts()).ends_with("<nics/>\n"));
    }

    #[test]
    fn dates_and_decimals() {
        let ms = parse_time("2019-10-15T10:12:12.505Z").unwrap();
        assert_eq!(xml_date(ms, opts().offset), "2019-10-15T12:12:12.505+02:00");
        assert_eq!(decimal(12.345), "12");
        assert_eq!(decimal(1.234), "1.2");
        assert_eq!(decimal(0.0), "0");
        assert_eq!(decimal(5.0), "5");
    }

    #[test]
    fn utc_offsets_as_the_world_file_gives_them() {
        let secs = |s: &str| parse_offset(s).map(|o| o.seconds());
        assert_eq!(secs("+02:00"), Some(7200));
        assert_eq!(secs("-02:30"), Some(-9000));
        assert_eq!(secs("+25:59"), Some(25 * 3600 + 59 * 60));
        for bad in ["+26:00", "+01:60", "02:00", "+2", "+-05:00"] {
            assert_eq!(secs(bad), None, "{bad}");
        }
        let ms = parse_time("2019-10-15T10:12:12.505Z").unwrap();
        let west = parse_offset("-02:30").unwrap();
        assert_eq!(xml_date(ms, west), "2019-10-15T07:42:12.505-02:30");
    }
}
