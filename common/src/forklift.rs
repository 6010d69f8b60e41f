//! Forklift's vocabulary and rules that several tools share: the versions liftkit knows, the oVirt
//! concerns and plan checks each version applies (plan-gen offline, forklift-sim on the API
//! server, plan-run live), and the terminal conditions plan-run reads and forklift-sim writes.

pub mod builder;
pub mod concerns;
pub mod plan;
pub mod version;

pub use version::{FORKLIFT_VERSION_ANNOTATION, ForkliftVersion};

/// How a Migration, a Plan's run or one VM ended: the terminal condition types Forklift sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Outcome {
    Succeeded,
    Failed,
    Canceled,
}

impl Outcome {
    /// The condition type (`Succeeded`, `Failed`, `Canceled`).
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Succeeded => "Succeeded",
            Outcome::Failed => "Failed",
            Outcome::Canceled => "Canceled",
        }
    }
}
