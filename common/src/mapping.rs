//! The mapping syntax shared by capacity-calc, ip-budget and plan-gen: which oVirt storage domain
//! goes to which storage class, which oVirt network to which pod/multus network.
//!
//! A rule is `SRC=DST`, given with `--storage-map`/`--network-map` (repeatable) or in a mapping file
//! (`--map-file`, lines `storage SRC=DST` / `network SRC=DST`, `#` comments).
//!
//! SRC is an oVirt id (a UUID), a `DC/name` path, a plain name, or `*` (everything else). The most
//! specific rule wins: id > `DC/name` > name > `*`. Names are compared exactly (oVirt names are
//! case-sensitive). A rule on the command line replaces a rule for the same SRC in a mapping file;
//! the same SRC twice on the command line, or twice in the files, is an error.
//!
//! Storage DST: `CLASS[:VOLUMEMODE[:ACCESSMODE]]`, e.g. `trident-nfs`, `ceph-rbd:Block:ReadWriteMany`
//! (volume mode Filesystem|Block, access mode ReadWriteOnce|ReadWriteMany|ReadOnlyMany|
//! ReadWriteOncePod or RWO|RWX|ROX|RWOP; left out, the class's CDI storage profile decides).
//! Network DST: `pod`, `multus:NAMESPACE/NAME` (a NetworkAttachmentDefinition), or `ignored`.
//!
//! Errors are one line naming the flag (`--storage-map x: ...`) or the file and line
//! (`maps.txt:3: ...`), with exit code 2 (usage); an unreadable mapping file is 66.

use crate::error::{Error, Result};
use crate::names::{is_rfc1123_label, is_rfc1123_subdomain};
use serde::Serialize;
use std::fmt;
use std::path::{Path, PathBuf};

/// What a rule's SRC names.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Source {
    /// An oVirt id (UUID-shaped SRC).
    Id(String),
    /// `DC/name`: a network or storage domain of that data center.
    Path { data_center: String, name: String },
    /// A plain name, in any data center.
    Name(String),
    /// `*`: everything no other rule matches.
    Any,
}

impl Source {
    pub fn parse(text: &str) -> std::result::Result<Source, String> {
        let text = text.trim();
        if text.is_empty() {
            return Err("empty source (expected a name, DC/name, an id or *)".into());
        }
        if text == "*" {
            return Ok(Source::Any);
        }
        if looks_like_uuid(text) {
            return Ok(Source::Id(text.to_ascii_lowercase()));
        }
        if let Some((dc, name)) = text.split_once('/') {
            if dc.is_empty() || name.is_empty() || name.contains('/') {
                return Err(format!("bad source path {text:?} (expected DC/name)"));
            }
            return Ok(Source::Path {
                data_center: dc.to_string(),
                name: name.to_string(),
            });
        }
        Ok(Source::Name(text.to_string()))
    }

    /// Higher wins: id 3, `DC/name` 2, name 1, `*` 0.
    pub fn specificity(&self) -> u8 {
        match self {
            Source::Id(_) => 3,
            Source::Path { .. } => 2,
            Source::Name(_) => 1,
            Source::Any => 0,
        }
    }

    fn matches(&self, object: &SourceObject<'_>) -> bool {
        match self {
            Source::Id(id) => object.id.is_some_and(|o| o.eq_ignore_ascii_case(id)),
            Source::Path { data_center, name } => {
                object.data_center == Some(data_center.as_str())
                    && object.name == Some(name.as_str())
            }
            Source::Name(name) => object.name == Some(name.as_str()),
            Source::Any => true,
        }
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Id(id) => f.write_str(id),
            Source::Path { data_center, name } => write!(f, "{data_center}/{name}"),
            Source::Name(name) => f.write_str(name),
            Source::Any => f.write_str("*"),
        }
    }
}

fn looks_like_uuid(text: &str) -> bool {
    let groups: Vec<&str> = text.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, len)| g.len() == len && g.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// An oVirt object a rule may match: a storage domain or a network.
#[derive(Debug, Clone, Copy, Default)]
pub struct SourceObject<'a> {
    pub id: Option<&'a str>,
    /// The data center's name (a VM's data center for a storage domain, the network's own for a network).
    pub data_center: Option<&'a str>,
    pub name: Option<&'a str>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum VolumeMode {
    Filesystem,
    Block,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum AccessMode {
    ReadWriteOnce,
    ReadWriteMany,
    ReadOnlyMany,
    ReadWriteOncePod,
}

/// A storage destination, serialised as Forklift's StorageMap destination.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StorageTarget {
    pub storage_class: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub volume_mode: Option<VolumeMode>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access_mode: Option<AccessMode>,
}

impl StorageTarget {
    /// Block volumes carry no filesystem, hence no filesystem overhead; an unset mode is taken as
    /// Filesystem (the larger request), since the storage profile is not known offline.
    pub fn is_block(&self) -> bool {
        self.volume_mode == Some(VolumeMode::Block)
    }
}

impl fmt::Display for StorageTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.storage_class)?;
        if let Some(mode) = self.volume_mode {
            write!(f, ":{mode:?}")?;
        }
        if let Some(access) = self.access_mode {
            write!(f, ":{access:?}")?;
        }
        Ok(())
    }
}

/// A network destination, serialised as Forklift's NetworkMap destination (`type`, `namespace`, `name`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum NetworkTarget {
    Pod,
    Multus { namespace: String, name: String },
    Ignored,
}

impl fmt::Display for NetworkTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NetworkTarget::Pod => f.write_str("pod"),
            NetworkTarget::Multus { namespace, name } => write!(f, "multus:{namespace}/{name}"),
            NetworkTarget::Ignored => f.write_str("ignored"),
        }
    }
}

/// A mapping destination: parses the DST of `SRC=DST`.
pub trait Destination: Sized + Clone {
    /// `storage` or `network`: the word in mapping files and flags.
    const KIND: &'static str;
    fn parse(text: &str) -> std::result::Result<Self, String>;
}

impl Destination for StorageTarget {
    const KIND: &'static str = "storage";
    fn parse(text: &str) -> std::result::Result<Self, String> {
        let mut parts = text.trim().split(':');
        let class = parts.next().unwrap_or_default();
        if !is_rfc1123_subdomain(class) {
            return Err(format!(
                "bad storage class {class:?} (expected a Kubernetes name like trident-nfs, then optionally :VolumeMode:AccessMode)"
            ));
        }
        let volume_mode = match parts.next() {
            None | Some("") => None,
            Some(m) => Some(match m.to_ascii_lowercase().as_str() {
                "filesystem" => VolumeMode::Filesystem,
                "block" => VolumeMode::Block,
                _ => {
                    return Err(format!(
                        "bad volume mode {m:?} (expected Filesystem or Block)"
                    ));
                }
            }),
        };
        let access_mode = match parts.next() {
            None | Some("") => None,
            Some(a) => Some(match a.to_ascii_lowercase().as_str() {
                "readwriteonce" | "rwo" => AccessMode::ReadWriteOnce,
                "readwritemany" | "rwx" => AccessMode::ReadWriteMany,
                "readonlymany" | "rox" => AccessMode::ReadOnlyMany,
                "readwriteoncepod" | "rwop" => AccessMode::ReadWriteOncePod,
                _ => {
                    return Err(format!(
                        "bad access mode {a:?} (expected ReadWriteOnce, ReadWriteMany, ReadOnlyMany or ReadWriteOncePod)"
                    ));
                }
            }),
        };
        if let Some(rest) = parts.next() {
            return Err(format!(
                "unexpected {rest:?} after the access mode (expected CLASS[:VolumeMode[:AccessMode]])"
            ));
        }
        Ok(StorageTarget {
            storage_class: class.to_string(),
            volume_mode,
            access_mode,
        })
    }
}

impl Destination for NetworkTarget {
    const KIND: &'static str = "network";
    fn parse(text: &str) -> std::result::Result<Self, String> {
        let text = text.trim();
        match text {
            "pod" => return Ok(NetworkTarget::Pod),
            "ignored" => return Ok(NetworkTarget::Ignored),
            _ => {}
        }
        let Some(rest) = text.strip_prefix("multus:") else {
            return Err(format!(
                "bad network destination {text:?} (expected pod, multus:NAMESPACE/NAME or ignored)"
            ));
        };
        let Some((namespace, name)) = rest.split_once('/') else {
            return Err(format!(
                "bad multus destination {text:?} (expected multus:NAMESPACE/NAME)"
            ));
        };
        if !is_rfc1123_label(namespace) {
            return Err(format!(
                "bad namespace {namespace:?} in {text:?} (expected an RFC 1123 label)"
            ));
        }
        if !is_rfc1123_subdomain(name) {
            return Err(format!(
                "bad network attachment name {name:?} in {text:?} (expected a Kubernetes name)"
            ));
        }
        Ok(NetworkTarget::Multus {
            namespace: namespace.to_string(),
            name: name.to_string(),
        })
    }
}

/// One `SRC=DST` rule and where it was given (`--storage-map` or `file:line`).
#[derive(Debug, Clone)]
pub struct Rule<D> {
    pub source: Source,
    pub destination: D,
    pub origin: String,
}

/// Rules of one kind. `lookup` gives the most specific rule matching an object.
#[derive(Debug, Clone)]
pub struct Map<D> {
    rules: Vec<Rule<D>>,
}

impl<D> Default for Map<D> {
    fn default() -> Self {
        Map { rules: Vec::new() }
    }
}

impl<D: Destination> Map<D> {
    pub fn rules(&self) -> &[Rule<D>] {
        &self.rules
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The most specific rule that matches `object`, if any.
    pub fn lookup(&self, object: &SourceObject<'_>) -> Option<&Rule<D>> {
        self.rules
            .iter()
            .filter(|r| r.source.matches(object))
            .max_by_key(|r| r.source.specificity())
    }

    /// Parses one `SRC=DST`; `origin` names the flag or file:line in errors.
    pub fn parse_rule(spec: &str, origin: &str) -> std::result::Result<Rule<D>, String> {
        let Some((source, destination)) = spec.split_once('=') else {
            return Err(format!("{spec:?}: expected SRC=DST"));
        };
        let source = Source::parse(source).map_err(|e| format!("{spec:?}: {e}"))?;
        let destination = D::parse(destination).map_err(|e| format!("{spec:?}: {e}"))?;
        Ok(Rule {
            source,
            destination,
            origin: origin.to_string(),
        })
    }

    /// Adds a rule; a rule from a flag replaces a file's rule for the same source, any other
    /// duplicate is an error.
    fn add(&mut self, rule: Rule<D>, from_flag: bool) -> std::result::Result<(), String> {
        if let Some(pos) = self.rules.iter().position(|r| r.source == rule.source) {
            let existing_from_flag = self.rules[pos].origin.starts_with("--");
            if from_flag && !existing_from_flag {
                self.rules[pos] = rule;
                return Ok(());
            }
            return Err(format!(
                "{} source {} is mapped twice (also at {})",
                D::KIND,
                rule.source,
                self.rules[pos].origin
            ));
        }
        self.rules.push(rule);
        Ok(())
    }
}

/// Storage and network rules together, as a tool's flags and mapping files give them.
#[derive(Debug, Clone, Default)]
pub struct Mappings {
    pub storage: Map<StorageTarget>,
    pub network: Map<NetworkTarget>,
}

impl Mappings {
    /// Reads the mapping files (in order), then the flags, which win over the files.
    pub fn load(
        storage_flags: &[String],
        network_flags: &[String],
        map_files: &[PathBuf],
    ) -> Result<Self> {
        let mut maps = Mappings::default();
        for path in map_files {
            maps.read_file(path)?;
        }
        for spec in storage_flags {
            let rule = Map::<StorageTarget>::parse_rule(spec, "--storage-map")
                .map_err(|e| Error::usage(format!("--storage-map {e}")))?;
            maps.storage
                .add(rule, true)
                .map_err(|e| Error::usage(format!("--storage-map {spec}: {e}")))?;
        }
        for spec in network_flags {
            let rule = Map::<NetworkTarget>::parse_rule(spec, "--network-map")
                .map_err(|e| Error::usage(format!("--network-map {e}")))?;
            maps.network
                .add(rule, true)
                .map_err(|e| Error::usage(format!("--network-map {spec}: {e}")))?;
        }
        Ok(maps)
    }

    /// Adds the rules of one mapping file.
    pub fn read_file(&mut self, path: &Path) -> Result<()> {
        let text = crate::jsonl::read_to_string(path)?;
        self.read_text(&path.display().to_string(), &text)
    }

    /// Adds the rules of mapping-file text; `name` is used in errors (`name:line`).
    pub fn read_text(&mut self, name: &str, text: &str) -> Result<()> {
        for (index, line) in text.lines().enumerate() {
            let origin = format!("{name}:{}", index + 1);
            let line = strip_comment(line).trim();
            if line.is_empty() {
                continue;
            }
            let (kind, spec) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
            let spec = spec.trim();
            let result = match kind {
                "storage" => Map::<StorageTarget>::parse_rule(spec, &origin)
                    .and_then(|r| self.storage.add(r, false)),
                "network" => Map::<NetworkTarget>::parse_rule(spec, &origin)
                    .and_then(|r| self.network.add(r, false)),
                other => Err(format!(
                    "unknown rule kind {other:?} (expected `storage SRC=DST` or `network SRC=DST`)"
                )),
            };
            result.map_err(|e| Error::usage(format!("{origin}: {e}")))?;
        }
        Ok(())
    }
}

/// `#` starts a comment at the start of a line or after whitespace.
fn strip_comment(line: &str) -> &str {
    let bytes = line.as_bytes();
    for (i, b) in bytes.iter().enumerate() {
        if *b == b'#' && (i == 0 || bytes[i - 1].is_ascii_whitespace()) {
            return &line[..i];
        }
    }
    line
}

/// The mapping flags, for tools that take both kinds (plan-gen). Tools that need one kind declare
/// their own flags with the same names and call `Mappings::load`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct MapArgs {
    /// Map a storage domain to a storage class: SRC=CLASS[:VolumeMode[:AccessMode]]; SRC is a name, DC/name, id or * (repeatable)
    #[arg(long = "storage-map", value_name = "SRC=DST")]
    pub storage_map: Vec<String>,
    /// Map a network: SRC=pod|multus:NS/NAME|ignored; SRC is a name, DC/name, id or * (repeatable)
    #[arg(long = "network-map", value_name = "SRC=DST")]
    pub network_map: Vec<String>,
    /// Read mapping rules from FILE: lines `storage SRC=DST` / `network SRC=DST`, # comments (repeatable)
    #[arg(long = "map-file", value_name = "FILE")]
    pub map_file: Vec<PathBuf>,
}

impl MapArgs {
    pub fn load(&self) -> Result<Mappings> {
        Mappings::load(&self.storage_map, &self.network_map, &self.map_file)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ExitCode;

    const ID: &str = "6f1f3b0e-1c2d-4e5f-8a9b-0c1d2e3f4a5b";

    fn obj<'a>(id: &'a str, dc: &'a str, name: &'a str) -> SourceObject<'a> {
        SourceObject {
            id: Some(id),
            data_center: Some(dc),
            name: Some(name),
        }
    }

    #[test]
    fn sources() {
        assert_eq!(Source::parse("*").unwrap(), Source::Any);
        assert_eq!(Source::parse(ID).unwrap(), Source::Id(ID.into()));
        assert_eq!(
            Source::parse(&ID.to_uppercase()).unwrap(),
            Source::Id(ID.into())
        );
        assert_eq!(
            Source::parse("Default/ovirtmgmt").unwrap(),
            Source::Path {
                data_center: "Default".into(),
                name: "ovirtmgmt".into()
            }
        );
        assert_eq!(
            Source::parse("nfs-data").unwrap(),
            Source::Name("nfs-data".into())
        );
        assert!(Source::parse("").is_err());
        assert!(Source::parse("a/b/c").is_err());
        assert!(Source::parse("/b").is_err());
    }

    #[test]
    fn storage_destinations() {
        let t = StorageTarget::parse("trident-nfs").unwrap();
        assert_eq!(t.storage_class, "trident-nfs");
        assert_eq!((t.volume_mode, t.access_mode), (None, None));
        let t = StorageTarget::parse("ceph-rbd:Block:ReadWriteMany").unwrap();
        assert_eq!(t.volume_mode, Some(VolumeMode::Block));
        assert_eq!(t.access_mode, Some(AccessMode::ReadWriteMany));
        assert!(t.is_block());
        assert_eq!(t.to_string(), "ceph-rbd:Block:ReadWriteMany");
        assert_eq!(
            StorageTarget::parse("x:filesystem:rwo")
                .unwrap()
                .to_string(),
            "x:Filesystem:ReadWriteOnce"
        );
        assert_eq!(
            serde_json::to_value(&t).unwrap(),
            serde_json::json!({"storageClass": "ceph-rbd", "volumeMode": "Block", "accessMode": "ReadWriteMany"})
        );
        for bad in ["", "Ceph", "x:Blocky", "x:Block:RWZ", "x:Block:RWO:extra"] {
            assert!(StorageTarget::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn network_destinations() {
        assert_eq!(NetworkTarget::parse("pod").unwrap(), NetworkTarget::Pod);
        assert_eq!(
            NetworkTarget::parse("ignored").unwrap(),
            NetworkTarget::Ignored
        );
        let m = NetworkTarget::parse("multus:vlan-ns/vlan201").unwrap();
        assert_eq!(m.to_string(), "multus:vlan-ns/vlan201");
        assert_eq!(
            serde_json::to_value(&m).unwrap(),
            serde_json::json!({"type": "multus", "namespace": "vlan-ns", "name": "vlan201"})
        );
        assert_eq!(
            serde_json::to_value(NetworkTarget::Pod).unwrap(),
            serde_json::json!({"type": "pod"})
        );
        for bad in [
            "",
            "multus",
            "multus:ns",
            "multus:NS/x",
            "bridge:a/b",
            "multus:a/B",
        ] {
            assert!(NetworkTarget::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn most_specific_rule_wins() {
        let flags: Vec<String> = [
            "*=default-sc",
            "data=by-name",
            "DC1/data=by-path",
            &format!("{ID}=by-id"),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let maps = Mappings::load(&flags, &[], &[]).unwrap();
        let class = |o: SourceObject| {
            maps.storage
                .lookup(&o)
                .unwrap()
                .destination
                .storage_class
                .clone()
        };
        assert_eq!(class(obj(ID, "DC1", "data")), "by-id");
        assert_eq!(class(obj("other", "DC1", "data")), "by-path");
        assert_eq!(class(obj("other", "DC2", "data")), "by-name");
        assert_eq!(class(obj("other", "DC2", "iso")), "default-sc");
        let maps = Mappings::load(&["data=x".into()], &[], &[]).unwrap();
        assert!(maps.storage.lookup(&obj("o", "DC", "other")).is_none());
    }

    #[test]
    fn bad_flags_name_the_flag_and_are_usage_errors() {
        let err = Mappings::load(&["nfs".into()], &[], &[]).unwrap_err();
        assert_eq!(err.code, ExitCode::Usage);
        assert!(
            err.message
                .starts_with("--storage-map \"nfs\": expected SRC=DST"),
            "{}",
            err.message
        );
        let err = Mappings::load(&[], &["a=multus:x".into()], &[]).unwrap_err();
        assert!(err.message.starts_with("--network-map "), "{}", err.message);
        let err = Mappings::load(&["a=x".into(), "a=y".into()], &[], &[]).unwrap_err();
        assert!(err.message.contains("mapped twice"), "{}", err.message);
    }

    #[test]
    fn files_name_file_and_line_and_flags_win() {
        let mut maps = Mappings::default();
        let text = "# storage\nstorage nfs=trident-nfs  # a comment\n\nnetwork DC1/vm=multus:ns/vm\nnetwork *=pod\n";
        maps.read_text("maps.txt", text).unwrap();
        assert_eq!(maps.storage.rules().len(), 1);
        assert_eq!(maps.storage.rules()[0].origin, "maps.txt:2");
        assert_eq!(maps.network.rules().len(), 2);
        let err = Mappings::default()
            .read_text("maps.txt", "storage a=b\nstorag x=y\n")
            .unwrap_err();
        assert_eq!(err.code, ExitCode::Usage);
        assert!(
            err.message.starts_with("maps.txt:2: unknown rule kind"),
            "{}",
            err.message
        );
        let err = Mappings::default()
            .read_text("m", "network a=pod\nnetwork a=ignored\n")
            .unwrap_err();
        assert!(
            err.message
                .starts_with("m:2: network source a is mapped twice (also at m:1)"),
            "{}",
            err.message
        );

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("maps.txt");
        std::fs::write(&path, "storage nfs=from-file\nstorage iscsi=ceph\n").unwrap();
        let maps = Mappings::load(&["nfs=from-flag".into()], &[], &[path]).unwrap();
        let o = SourceObject {
            name: Some("nfs"),
            ..Default::default()
        };
        assert_eq!(
            maps.storage.lookup(&o).unwrap().destination.storage_class,
            "from-flag"
        );
        let err = Mappings::load(&[], &[], &[dir.path().join("missing")]).unwrap_err();
        assert_eq!(err.code, ExitCode::NoInput);
    }
}
