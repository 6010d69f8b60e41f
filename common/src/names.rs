//! Kubernetes names from oVirt names: RFC 1123 labels (lowercase letters, digits and `-`, at most
//! 63 characters, starting and ending alphanumeric), and short stable hashes to keep them unique.

use sha2::{Digest, Sha256};

/// The longest RFC 1123 label (namespace names, most object names).
pub const MAX_LABEL: usize = 63;

/// Length of the hex hash suffix `stable_hash` gives (40 bits).
pub const HASH_LEN: usize = 10;

/// True when `name` is a valid RFC 1123 label.
pub fn is_rfc1123_label(name: &str) -> bool {
    let bytes = name.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= MAX_LABEL
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
        && bytes[0] != b'-'
        && bytes[bytes.len() - 1] != b'-'
}

/// True when `name` is a valid RFC 1123 subdomain (labels joined by dots, at most 253 characters):
/// storage class and network attachment definition names.
pub fn is_rfc1123_subdomain(name: &str) -> bool {
    name.len() <= 253
        && name
            .split('.')
            .all(|label| !label.is_empty() && is_label_chars(label))
}

fn is_label_chars(label: &str) -> bool {
    let b = label.as_bytes();
    b.iter()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b[0] != b'-'
        && b[b.len() - 1] != b'-'
}

/// The closest RFC 1123 label to `raw`: lowercased, every run of other characters turned into one
/// `-`, no `-` at either end, cut to 63 characters. Empty input gives `x`. Different inputs can
/// give the same label; callers that need uniqueness add `stable_hash` (see `with_suffix`).
pub fn sanitize_label(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    for c in raw.chars() {
        let c = c.to_ascii_lowercase();
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            out.push(c);
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    let mut out = out.trim_matches('-').to_string();
    out.truncate(MAX_LABEL);
    let out = out.trim_end_matches('-').to_string();
    if out.is_empty() { "x".to_string() } else { out }
}

/// A short, stable hash (10 lowercase hex digits) of some strings; the same parts in the same order
/// always give the same hash, on every machine and version.
pub fn stable_hash<S: AsRef<str>>(parts: &[S]) -> String {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update(part.as_ref().as_bytes());
        // A separator that cannot occur in text keeps ["ab","c"] and ["a","bc"] apart.
        hasher.update([0u8]);
    }
    let digest = hasher.finalize();
    digest
        .iter()
        .take(HASH_LEN / 2)
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// `label-hash`, with `label` cut so the whole stays a valid label.
pub fn with_suffix(label: &str, hash: &str) -> String {
    let keep = MAX_LABEL.saturating_sub(hash.len() + 1);
    let mut base: String = label.chars().take(keep).collect();
    while base.ends_with('-') {
        base.pop();
    }
    if base.is_empty() {
        format!("x-{hash}")
    } else {
        format!("{base}-{hash}")
    }
}

/// Why liftkit must not create or fill the namespace `name`, if it must not: the cluster's own
/// (`default`, and `kube-system`, `kube-public`, `kube-node-lease`: every `kube-*`), OpenShift's
/// (`openshift`, `openshift-*`: every name starting with `openshift`), and those in `protect`
/// (exact names, or prefixes written `team-*`). Owners get admin rights in the namespaces liftkit
/// writes: in one of these they would hold the platform.
pub fn protected_namespace(name: &str, protect: &[String]) -> Option<String> {
    if name == "default" || name.starts_with("kube-") || name.starts_with("openshift") {
        return Some(format!(
            "{name} is a system namespace (default, kube-*, openshift*)"
        ));
    }
    let given = protect.iter().find(|p| match p.strip_suffix('*') {
        Some(prefix) => name.starts_with(prefix),
        None => p.as_str() == name,
    })?;
    Some(format!("{name} is protected (--protect {given})"))
}

/// The part of an oVirt principal that names a person or group: `alice@example.com-authz` and
/// `alice` give `alice`; a group path `example.com/Groups/dba` gives `dba`.
pub fn short_principal(principal: &str) -> &str {
    let before_at = principal.split('@').next().unwrap_or(principal);
    before_at.rsplit('/').next().unwrap_or(before_at)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels() {
        assert!(is_rfc1123_label("alice-bob-ns"));
        assert!(is_rfc1123_label("a"));
        assert!(!is_rfc1123_label(""));
        assert!(!is_rfc1123_label("-a"));
        assert!(!is_rfc1123_label("a-"));
        assert!(!is_rfc1123_label("Alice"));
        assert!(!is_rfc1123_label("a.b"));
        assert!(!is_rfc1123_label(&"a".repeat(64)));
        assert!(is_rfc1123_subdomain("ocs-storagecluster-ceph-rbd"));
        assert!(is_rfc1123_subdomain("a.b-c"));
        assert!(!is_rfc1123_subdomain("a..b"));
        assert!(!is_rfc1123_subdomain("Trident"));
    }

    #[test]
    fn sanitizing() {
        assert_eq!(sanitize_label("Alice"), "alice");
        assert_eq!(sanitize_label("j.doe@example.com"), "j-doe-example-com");
        assert_eq!(sanitize_label("__x__"), "x");
        assert_eq!(sanitize_label("émile"), "mile");
        assert_eq!(sanitize_label("@@@"), "x");
        let long = sanitize_label(&format!("{}-{}", "a".repeat(62), "b"));
        assert!(is_rfc1123_label(&long), "{long}");
        for raw in ["", "-", "a--b", "ÄÖÜ", "x y z", &"ab-".repeat(40)] {
            assert!(is_rfc1123_label(&sanitize_label(raw)), "{raw:?}");
        }
    }

    #[test]
    fn hashes_and_suffixes() {
        let h = stable_hash(&["user:alice", "user:bob"]);
        assert_eq!(h.len(), HASH_LEN);
        assert_eq!(h, stable_hash(&["user:alice", "user:bob"]));
        assert_ne!(stable_hash(&["ab", "c"]), stable_hash(&["a", "bc"]));
        // A value computed once: the hash must never change between versions.
        assert_eq!(stable_hash(&["alice"]), "bfebef88e4");
        let long = with_suffix(&"a".repeat(63), &h);
        assert_eq!(long.len(), 63);
        assert!(is_rfc1123_label(&long));
        assert!(is_rfc1123_label(&with_suffix("ab-", &h)));
    }

    #[test]
    fn system_and_protected_namespaces() {
        for system in [
            "default",
            "kube-system",
            "kube-public",
            "openshift",
            "openshift-etcd",
        ] {
            assert!(protected_namespace(system, &[]).is_some(), "{system}");
        }
        for fine in ["alice-ns", "unowned", "kubevirt-a", "my-default"] {
            assert_eq!(protected_namespace(fine, &[]), None, "{fine}");
        }
        let protect = vec!["prod".to_string(), "team-*".to_string()];
        assert!(protected_namespace("prod", &protect).is_some());
        assert!(protected_namespace("team-a", &protect).is_some());
        assert_eq!(protected_namespace("prod-2", &protect), None);
    }

    #[test]
    fn principals() {
        assert_eq!(short_principal("alice@example.com-authz"), "alice");
        assert_eq!(short_principal("alice"), "alice");
        assert_eq!(short_principal("example.com/Groups/dba"), "dba");
    }
}
