//! Strings that came from the engine or a guest agent, made safe for where they land: a DNS name
//! checked as one, a CSV cell that no spreadsheet runs as a formula, text for a terminal with its
//! control characters escaped, addresses and MACs parsed rather than passed on as text.

use std::borrow::Cow;
use std::net::IpAddr;

/// Why `name` is not a DNS host name (RFC 1123 section 2.1 over RFC 952: labels of letters,
/// digits and `-`, not starting or ending with `-`, 1 to 63 characters; at most 253 characters
/// without the root's trailing dot). `None` when it is one.
pub fn dns_name_error(name: &str) -> Option<String> {
    let bare = name.strip_suffix('.').unwrap_or(name);
    if bare.is_empty() {
        return Some("empty".into());
    }
    if bare.len() > 253 {
        return Some(format!("{} characters (at most 253)", bare.len()));
    }
    for label in bare.split('.') {
        if label.is_empty() {
            return Some("an empty label".into());
        }
        if label.len() > 63 {
            return Some(format!(
                "a label of {} characters (at most 63)",
                label.len()
            ));
        }
        if let Some(c) = label
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || *c == '-'))
        {
            return Some(format!("the character {}", for_terminal(&format!("{c:?}"))));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Some(format!("the label {label:?} starts or ends with '-'"));
        }
    }
    None
}

/// True when `name` is a DNS host name (see [`dns_name_error`]).
pub fn is_dns_name(name: &str) -> bool {
    dns_name_error(name).is_none()
}

/// A CSV cell a spreadsheet shows as text: a cell starting with `=`, `+`, `-`, `@`, a tab or a
/// carriage return (what Excel, LibreOffice and Google Sheets read as the start of a formula) gets
/// a leading `'`, as OWASP's CSV-injection advice says. Numbers are not strings and never pass here.
pub fn csv_cell(text: &str) -> Cow<'_, str> {
    match text.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => Cow::Owned(format!("'{text}")),
        _ => Cow::Borrowed(text),
    }
}

/// `text` for a terminal or a log: control characters (C0, DEL, C1: escape sequences, newlines,
/// carriage returns, bells) written as `\n`, `\r`, `\t` or `\u{1b}`, as Rust's `{:?}` writes
/// them, so no string can move the cursor, recolour, retitle or clear a terminal, or start a line
/// of its own in a log. Everything else, non-ASCII letters and backslashes included, stays.
pub fn for_terminal(text: &str) -> Cow<'_, str> {
    if !text.chars().any(char::is_control) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// Lines of text for a terminal: each line as [`for_terminal`] writes it, the newlines between
/// them kept.
pub fn lines_for_terminal(text: &str) -> Cow<'_, str> {
    if !text.chars().any(|c| c.is_control() && c != '\n') {
        return Cow::Borrowed(text);
    }
    Cow::Owned(
        text.split('\n')
            .map(for_terminal)
            .collect::<Vec<_>>()
            .join("\n"),
    )
}

/// An address as a guest reports it (`10.0.0.5`, `fd00::5`, optionally with a `/prefix`), parsed.
pub fn parse_ip(text: &str) -> Option<IpAddr> {
    let text = text.trim();
    let (address, prefix) = match text.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (text, None),
    };
    let ip: IpAddr = address.parse().ok()?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    match prefix.map(str::parse::<u8>) {
        None => Some(ip),
        Some(Ok(p)) if p <= max => Some(ip),
        Some(_) => None,
    }
}

/// A MAC address (`56:6f:1a:2b:00:01`, also with `-` between the octets, any case) in the form
/// the engine and DHCP servers write it: six lowercase hex octets joined by `:`.
pub fn parse_mac(text: &str) -> Option<String> {
    let text = text.trim();
    let separator = if text.contains('-') { '-' } else { ':' };
    let octets: Vec<&str> = text.split(separator).collect();
    let valid = octets.len() == 6
        && octets
            .iter()
            .all(|o| o.len() == 2 && o.bytes().all(|b| b.is_ascii_hexdigit()));
    valid.then(|| octets.join(":").to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns_names() {
        for good in [
            "rdu-web-01.example.com",
            "rdu-web-01.example.com.",
            "a",
            "3com.example",
            &format!("{}.example", "a".repeat(63)),
        ] {
            assert!(is_dns_name(good), "{good}");
        }
        for bad in [
            "",
            ".",
            "a..b",
            "-a.example",
            "a-.example",
            "a b.example",
            "a_b.example",
            "rdu-web-01.example.com.\nupdate delete example.com. A\nsend\n;",
            "émile.example",
            &format!("{}.example", "a".repeat(64)),
            &format!("{}a", "a.".repeat(127)),
        ] {
            assert!(!is_dns_name(bad), "{bad:?}");
        }
        let why = dns_name_error("a.b\nsend").unwrap();
        assert!(!why.contains('\n'), "{why}");
    }

    #[test]
    fn csv_cells_that_would_be_formulas() {
        for formula in ["=cmd|' /C calc'!A0", "+1", "-1+2", "@SUM(A1)", "\tx", "\rx"] {
            assert_eq!(csv_cell(formula), format!("'{formula}"));
        }
        for plain in ["web-01", "", "10.0.0.1", "a=b", "'quoted"] {
            assert_eq!(csv_cell(plain), plain);
        }
    }

    #[test]
    fn terminal_text() {
        assert_eq!(for_terminal("web-01 é"), "web-01 é");
        assert_eq!(for_terminal("a\x1b[2Jb"), "a\\u{1b}[2Jb");
        assert_eq!(for_terminal("a\nb\r\t\x07"), "a\\nb\\r\\t\\u{7}");
        assert_eq!(for_terminal("C:\\vm"), "C:\\vm");
        assert_eq!(for_terminal("\u{9b}31m"), "\\u{9b}31m");
        assert_eq!(for_terminal("\x7f"), "\\u{7f}");
        assert_eq!(lines_for_terminal("a\x1b[2J\nb\n"), "a\\u{1b}[2J\nb\n");
    }

    #[test]
    fn addresses_and_macs() {
        assert_eq!(parse_ip("10.0.0.5"), "10.0.0.5".parse().ok());
        assert_eq!(parse_ip("10.0.0.5/24"), "10.0.0.5".parse().ok());
        assert_eq!(parse_ip("fd00::5/64"), "fd00::5".parse().ok());
        for bad in [
            "abc",
            "999.1.1.1",
            "10.0.0.5/33",
            "10.0.0.5/",
            "fd00::5/129",
            "",
        ] {
            assert_eq!(parse_ip(bad), None, "{bad}");
        }
        assert_eq!(
            parse_mac("56:6F:1A:2B:00:01").as_deref(),
            Some("56:6f:1a:2b:00:01")
        );
        assert_eq!(
            parse_mac("56-6f-1a-2b-00-01").as_deref(),
            Some("56:6f:1a:2b:00:01")
        );
        for bad in [
            "zz",
            "",
            "56:6f:1a:2b:00",
            "56:6f:1a:2b:00:0g",
            "566f.1a2b.0001",
        ] {
            assert_eq!(parse_mac(bad), None, "{bad}");
        }
    }
}
