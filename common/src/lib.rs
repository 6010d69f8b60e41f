//! What every liftkit tool shares: the VM record, JSON-lines input and output, errors and the
//! one exit-code table, logging to stderr, atomic output files and the TLS crypto provider; the
//! mapping syntax, sizes, Kubernetes names and report formats of the planning tools; the escaping
//! and checks of what the engine and guests report.

pub mod cli;
pub mod csvrows;
pub mod duration;
pub mod error;
pub mod exit;
pub mod footprint;
pub mod forklift;
pub mod format;
pub mod jsonl;
pub mod k8s;
pub mod linkmodel;
pub mod mapping;
pub mod names;
pub mod output;
pub mod parallel;
pub mod record;
pub mod size;
pub mod tls;
pub mod untrusted;

pub use error::{Error, Result};
pub use exit::ExitCode;
