//! One error type for every tool: a one-line message a person can act on, and its exit code.

use crate::exit::ExitCode;
use std::fmt;

/// A tool error: context first, cause last, on one line.
#[derive(Debug)]
pub struct Error {
    pub code: ExitCode,
    pub message: String,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn new(code: ExitCode, message: impl Into<String>) -> Self {
        let message: String = message.into();
        // One line, always: a multi-line cause would break log parsers and cron mails. Names from
        // the engine or a guest end up here too: no control character reaches a terminal.
        let message = message.replace(['\n', '\r'], " ");
        let message = crate::untrusted::for_terminal(&message).into_owned();
        Error { code, message }
    }
    pub fn data(message: impl Into<String>) -> Self {
        Self::new(ExitCode::DataErr, message)
    }
    pub fn usage(message: impl Into<String>) -> Self {
        Self::new(ExitCode::Usage, message)
    }
    pub fn io(message: impl Into<String>) -> Self {
        Self::new(ExitCode::IoErr, message)
    }
    pub fn no_input(message: impl Into<String>) -> Self {
        Self::new(ExitCode::NoInput, message)
    }
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(ExitCode::Unavailable, message)
    }
    pub fn protocol(message: impl Into<String>) -> Self {
        Self::new(ExitCode::Protocol, message)
    }
    pub fn no_perm(message: impl Into<String>) -> Self {
        Self::new(ExitCode::NoPerm, message)
    }
    pub fn config(message: impl Into<String>) -> Self {
        Self::new(ExitCode::Config, message)
    }
    pub fn findings(message: impl Into<String>) -> Self {
        Self::new(ExitCode::Findings, message)
    }

    /// Prefix the message with more context (`file.jsonl: ...`).
    pub fn context(mut self, context: impl fmt::Display) -> Self {
        self.message = format!("{context}: {}", self.message);
        self
    }

    /// A closed stdout (`tool | head -1`) is a quiet success, not an error.
    pub fn is_broken_pipe(&self) -> bool {
        self.code == ExitCode::IoErr && self.message.ends_with(BROKEN_PIPE_MARK)
    }
}

const BROKEN_PIPE_MARK: &str = "(broken pipe)";

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

/// An I/O error while writing `what` (stdout or a file).
pub fn write_error(what: &str, err: &std::io::Error) -> Error {
    if err.kind() == std::io::ErrorKind::BrokenPipe {
        Error::io(format!("{what}: {BROKEN_PIPE_MARK}"))
    } else {
        Error::io(format!("{what}: {err}"))
    }
}

/// Turn a tool's result into the process exit code, printing the one-line error to stderr.
pub fn finish(tool: &str, result: Result<ExitCode>) -> std::process::ExitCode {
    match result {
        Ok(code) => code.into(),
        Err(err) if err.is_broken_pipe() => ExitCode::Ok.into(),
        Err(err) => {
            eprintln!("{tool}: {err}");
            err.code.into()
        }
    }
}
