//! Finding records: one per check of one migrated VM, `{vm, check, ok, message}` as report reads
//! them, with where the VM landed and, where a check compares, what it expected and found.

use serde::Serialize;
use serde_json::{Map, Value};

/// The checks, in the order they are made and written.
pub const CHECKS: &[(&str, &str)] = &[
    (
        MIGRATED,
        "the Plan's status says the VM's migration succeeded",
    ),
    (EXISTS, "the VirtualMachine exists in the target namespace"),
    (
        RUN_STRATEGY,
        "it runs if the source VM was up, and is halted otherwise",
    ),
    (
        RUNNING,
        "its VirtualMachineInstance is Running and Ready (within --boot-timeout)",
    ),
    (
        GUEST_AGENT,
        "the guest agent connected (AgentConnected), where the source had one",
    ),
    (GUEST_OS, "the guest reports its operating system"),
    (CPU, "sockets, cores and threads as the source's"),
    (MEMORY, "guest memory as the source's"),
    (FIRMWARE, "BIOS or EFI as Forklift maps the source's"),
    (
        DISKS,
        "as many disks as the source, each PVC no smaller than its source disk",
    ),
    (NICS, "a NIC for every source NIC the network map carries"),
    (MACS, "every NIC keeps its source MAC address"),
    (NETWORKS, "every NIC is on the network the map says"),
    (
        ADDRESSES,
        "the guest's addresses per MAC: kept, or changed as --allocations planned",
    ),
    (DNS, "the FQDN resolves to the VM's address (--dns-server)"),
];

pub const MIGRATED: &str = "migrated";
pub const EXISTS: &str = "exists";
pub const RUN_STRATEGY: &str = "run-strategy";
pub const RUNNING: &str = "running";
pub const GUEST_AGENT: &str = "guest-agent";
pub const GUEST_OS: &str = "guest-os";
pub const CPU: &str = "cpu";
pub const MEMORY: &str = "memory";
pub const FIRMWARE: &str = "firmware";
pub const DISKS: &str = "disks";
pub const NICS: &str = "nics";
pub const MACS: &str = "macs";
pub const NETWORKS: &str = "networks";
pub const ADDRESSES: &str = "addresses";
pub const DNS: &str = "dns";

/// One check of one VM.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    /// The source VM's name.
    pub vm: String,
    pub vm_id: String,
    /// Where it landed: the target namespace and VirtualMachine name (empty when unknown).
    pub namespace: String,
    pub target: String,
    pub check: &'static str,
    pub ok: bool,
    pub message: String,
    #[serde(skip_serializing_if = "Value::is_null")]
    pub expected: Value,
    #[serde(skip_serializing_if = "Value::is_null")]
    pub actual: Value,
}

/// The outcome of one check before it is tied to its VM.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub check: &'static str,
    pub ok: bool,
    pub message: String,
    pub expected: Value,
    pub actual: Value,
}

impl Outcome {
    pub fn pass(check: &'static str, message: impl Into<String>) -> Outcome {
        Outcome {
            check,
            ok: true,
            message: message.into(),
            expected: Value::Null,
            actual: Value::Null,
        }
    }

    pub fn fail(check: &'static str, message: impl Into<String>) -> Outcome {
        Outcome {
            ok: false,
            ..Outcome::pass(check, message)
        }
    }

    /// `ok` when `expected == actual`, with both in the record.
    pub fn compare(
        check: &'static str,
        expected: Value,
        actual: Value,
        message: impl Into<String>,
    ) -> Outcome {
        Outcome {
            check,
            ok: expected == actual,
            message: message.into(),
            expected,
            actual,
        }
    }

    pub fn with(mut self, expected: Value, actual: Value) -> Outcome {
        self.expected = expected;
        self.actual = actual;
        self
    }
}

/// The VM a set of outcomes belongs to.
#[derive(Debug, Clone, Default)]
pub struct Subject {
    pub vm: String,
    pub vm_id: String,
    pub namespace: String,
    pub target: String,
}

impl Subject {
    pub fn finding(&self, outcome: Outcome) -> Finding {
        Finding {
            vm: self.vm.clone(),
            vm_id: self.vm_id.clone(),
            namespace: self.namespace.clone(),
            target: self.target.clone(),
            check: outcome.check,
            ok: outcome.ok,
            message: outcome.message,
            expected: outcome.expected,
            actual: outcome.actual,
        }
    }
}

impl Finding {
    /// The record as a row for the report formats.
    pub fn row(&self) -> Map<String, Value> {
        match serde_json::to_value(self) {
            Ok(Value::Object(map)) => map,
            _ => Map::new(),
        }
    }
}
