//! Forklift's vocabulary that both sides use: plan-run reads it from the cluster, forklift-sim
//! writes it there.

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
