//! What every liftkit tool shares: the VM record, JSON-lines input and output, errors and the
//! one exit-code table, logging to stderr, atomic output files and the TLS crypto provider.

pub mod cli;
pub mod error;
pub mod exit;
pub mod jsonl;
pub mod k8s;
pub mod output;
pub mod record;
pub mod tls;

pub use error::{Error, Result};
pub use exit::ExitCode;
