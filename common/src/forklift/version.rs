//! The Forklift versions whose rules liftkit knows, each read at one upstream tag or commit of
//! kubev2v/forklift. plan-gen and forklift-sim take `--forklift-version`; plan-run compares the
//! version the manifests were preflighted for with the one the cluster runs.

use std::fmt;

/// A Forklift version liftkit reproduces. Add one only after reading its code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, clap::ValueEnum)]
pub enum ForkliftVersion {
    /// Releases 2.12.x, read at tag v2.12.5 (commit 3f0cd970, 2026-08-10).
    #[value(
        name = "2.12",
        help = "Forklift 2.12 releases, rules read at tag v2.12.5 (commit 3f0cd970, 2026-08-10); \
                v2.12.0-v2.12.2 lack the disk-count rule"
    )]
    V2_12,
    /// The development branch as of commit d42511bb (2026-08-21): no VMDuplicateNADMappings.
    #[value(
        name = "main",
        help = "Forklift main as of commit d42511bb (2026-08-21): two NICs may share a NAD \
                (VMDuplicateNADMappings removed by c73ed3093, MTV-6377)"
    )]
    Main,
}

/// Annotation on each Plan: the Forklift version plan-gen preflighted it for (`2.12`, `main`).
pub const FORKLIFT_VERSION_ANNOTATION: &str = "liftkit.io/forklift-version";

impl ForkliftVersion {
    /// The newest release: what plan-gen and forklift-sim follow unless told otherwise.
    pub const DEFAULT: ForkliftVersion = ForkliftVersion::V2_12;

    /// Every known version, oldest first.
    pub const ALL: [ForkliftVersion; 2] = [ForkliftVersion::V2_12, ForkliftVersion::Main];

    /// The name on the command line and in the annotation.
    pub fn as_str(self) -> &'static str {
        match self {
            ForkliftVersion::V2_12 => "2.12",
            ForkliftVersion::Main => "main",
        }
    }

    /// The upstream tag or commit the rules were read at.
    pub fn upstream(self) -> &'static str {
        match self {
            ForkliftVersion::V2_12 => "v2.12.5",
            ForkliftVersion::Main => "d42511bb",
        }
    }

    /// Whether two NICs of a VM mapped to one Multus NAD block the plan (`VMDuplicateNADMappings`):
    /// v2.12.5 `pkg/controller/plan/adapter/base/network.go` `ValidateNetworkDuplicates`; main
    /// removed it (c73ed3093: `ValidatePodNetworkDuplicates` counts pod-network NICs only).
    pub fn rejects_duplicate_nads(self) -> bool {
        self == ForkliftVersion::V2_12
    }

    /// Parses the name used on the command line and in the annotation.
    pub fn parse(name: &str) -> Option<ForkliftVersion> {
        Self::ALL.into_iter().find(|v| v.as_str() == name)
    }

    /// The rules a cluster's Forklift follows, from the version it reports (an operator CSV's
    /// `spec.version` like `2.12.5`, or an image tag like `v2.12.5`, `release-v2.12`, `latest`).
    /// `latest` and `main` are builds of the development branch; an unknown release gives None.
    pub fn of_installed(reported: &str) -> Option<ForkliftVersion> {
        let text = reported.trim();
        let text = text.strip_prefix("release-").unwrap_or(text);
        let text = text.strip_prefix('v').unwrap_or(text);
        if text == "latest" || text == "main" {
            return Some(ForkliftVersion::Main);
        }
        let mut parts = text.split(['.', '-']);
        match (parts.next(), parts.next()) {
            (Some("2"), Some("12")) => Some(ForkliftVersion::V2_12),
            _ => None,
        }
    }

    /// One line per known version for help texts: `2.12 (tag v2.12.5)`.
    pub fn list() -> String {
        Self::ALL
            .iter()
            .map(|v| format!("{} ({})", v.as_str(), v.upstream()))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl fmt::Display for ForkliftVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::ForkliftVersion::{self, *};

    #[test]
    fn installed_versions_map_to_rules() {
        for (reported, expected) in [
            ("2.12.5", Some(V2_12)),
            ("v2.12.0", Some(V2_12)),
            ("release-v2.12", Some(V2_12)),
            ("2.12.3-rc1", Some(V2_12)),
            ("latest", Some(Main)),
            ("2.13.0", None),
            ("2.1", None),
            ("2.120.0", None),
            ("", None),
        ] {
            assert_eq!(
                ForkliftVersion::of_installed(reported),
                expected,
                "{reported}"
            );
        }
    }

    #[test]
    fn names_round_trip() {
        for v in ForkliftVersion::ALL {
            assert_eq!(ForkliftVersion::parse(v.as_str()), Some(v));
        }
    }
}
