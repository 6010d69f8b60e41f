//! The one exit-code table of all liftkit tools (sysexits where one fits). Every man page prints it.

/// Exit codes shared by every tool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitCode {
    /// Everything done, nothing to report.
    Ok = 0,
    /// Done, with findings: something was left out, exceeded or failed (reported on stderr).
    Findings = 1,
    /// Bad usage: unknown flag, bad flag value.
    Usage = 2,
    /// Bad input data: a malformed line, a record that is not what the tool reads.
    DataErr = 65,
    /// An input file does not exist or cannot be read.
    NoInput = 66,
    /// A service is unavailable: engine or API server unreachable, timed out, or failing with 5xx.
    Unavailable = 69,
    /// An internal error (a bug): please report it.
    Software = 70,
    /// An I/O error writing output.
    IoErr = 74,
    /// The remote side answered something that breaks its protocol (malformed response).
    Protocol = 76,
    /// Authentication failed or permission denied (bad credentials, TLS verification, 401/403).
    NoPerm = 77,
    /// Bad configuration (missing password, unreadable CA file).
    Config = 78,
    /// Hung up (SIGHUP): the terminal or session went away; a temporary output file is removed.
    HungUp = 129,
    /// Interrupted (SIGINT, Ctrl-C).
    Interrupted = 130,
    /// Terminated (SIGTERM, as `timeout` and `kill` send); a temporary output file is removed.
    Terminated = 143,
}

impl ExitCode {
    pub const ALL: [ExitCode; 14] = [
        ExitCode::Ok,
        ExitCode::Findings,
        ExitCode::Usage,
        ExitCode::DataErr,
        ExitCode::NoInput,
        ExitCode::Unavailable,
        ExitCode::Software,
        ExitCode::IoErr,
        ExitCode::Protocol,
        ExitCode::NoPerm,
        ExitCode::Config,
        ExitCode::HungUp,
        ExitCode::Interrupted,
        ExitCode::Terminated,
    ];

    pub fn code(self) -> i32 {
        self as i32
    }

    pub fn meaning(self) -> &'static str {
        match self {
            ExitCode::Ok => "success",
            ExitCode::Findings => {
                "done, with findings (something left out, exceeded or failed; see stderr)"
            }
            ExitCode::Usage => "bad usage (unknown flag, bad flag value)",
            ExitCode::DataErr => "bad input data (malformed line, not the expected record)",
            ExitCode::NoInput => "an input file is missing or unreadable",
            ExitCode::Unavailable => {
                "service unavailable (unreachable, timed out, 5xx, incomplete fetch)"
            }
            ExitCode::Software => "internal error (a bug; please report it)",
            ExitCode::IoErr => "I/O error writing output",
            ExitCode::Protocol => "malformed response from the remote service",
            ExitCode::NoPerm => {
                "authentication or permission denied (credentials, TLS verification)"
            }
            ExitCode::Config => "bad configuration (missing password, unreadable CA file)",
            ExitCode::HungUp => "hung up (SIGHUP)",
            ExitCode::Interrupted => "interrupted (SIGINT, Ctrl-C)",
            ExitCode::Terminated => "terminated (SIGTERM)",
        }
    }

    /// The table as plain text, for `--help` and the man pages.
    pub fn table() -> String {
        let mut text = String::from("Exit status:\n");
        for code in Self::ALL {
            text.push_str(&format!("  {:>3}  {}\n", code.code(), code.meaning()));
        }
        text
    }
}

impl From<ExitCode> for std::process::ExitCode {
    fn from(code: ExitCode) -> Self {
        std::process::ExitCode::from(code.code() as u8)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_distinct_and_listed() {
        let mut codes: Vec<i32> = ExitCode::ALL.iter().map(|c| c.code()).collect();
        codes.sort();
        codes.dedup();
        assert_eq!(codes.len(), ExitCode::ALL.len());
        assert!(ExitCode::table().contains(" 65  bad input data"));
    }
}
