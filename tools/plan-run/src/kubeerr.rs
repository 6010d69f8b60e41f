//! kube's errors as liftkit's one-line errors with the table's exit codes: unreachable or 5xx 69,
//! 401/403 77, an object the server refuses 65, a kubeconfig that cannot be read 78.

use common::{Error, ExitCode};

/// `context: cause`, with the exit code the cause deserves.
pub fn error(context: &str, err: &kube::Error) -> Error {
    Error::new(code(err), format!("{context}: {}", describe(err)))
}

pub fn code(err: &kube::Error) -> ExitCode {
    match err {
        kube::Error::Api(status) => match status.code {
            401 | 403 => ExitCode::NoPerm,
            400 | 404 | 409 | 422 => ExitCode::DataErr,
            500..=599 if !is_transient(err) => ExitCode::DataErr,
            _ => ExitCode::Unavailable,
        },
        kube::Error::Auth(_) | kube::Error::RustlsTls(_) | kube::Error::TlsRequired => {
            ExitCode::NoPerm
        }
        kube::Error::InferConfig(_) | kube::Error::InferKubeconfig(_) => ExitCode::Config,
        kube::Error::SerdeError(_) => ExitCode::Protocol,
        kube::Error::Discovery(_) => ExitCode::DataErr,
        _ => ExitCode::Unavailable,
    }
}

/// Whether trying again later may help: the server is away, busy or restarting.
pub fn is_transient(err: &kube::Error) -> bool {
    match err {
        kube::Error::Api(status) => {
            // SSA's "field not declared in schema" comes back as a 500 that will never pass.
            let permanent = status.message.contains("not declared in schema")
                || status.message.contains("failed to create typed patch");
            matches!(status.code, 429 | 500..=599) && !permanent
        }
        kube::Error::HyperError(_) | kube::Error::Service(_) => true,
        _ => false,
    }
}

/// One line: the server's message and HTTP status, or the innermost cause of a transport error.
pub fn describe(err: &kube::Error) -> String {
    match err {
        kube::Error::Api(status) => {
            let message = if status.message.is_empty() {
                status.reason.clone()
            } else {
                status.message.clone()
            };
            // The server's words reach a terminal: escaped (common::untrusted).
            let message = common::untrusted::for_terminal(&message);
            let reason = common::untrusted::for_terminal(&status.reason);
            format!("{message} (HTTP {} {reason})", status.code)
        }
        other => {
            let mut text = other.to_string();
            let mut source = std::error::Error::source(other);
            while let Some(cause) = source {
                let cause_text = cause.to_string();
                if !text.contains(&cause_text) {
                    text = format!("{text}: {cause_text}");
                }
                source = cause.source();
            }
            common::untrusted::for_terminal(&text.replace(['\n', '\r'], " ")).into_owned()
        }
    }
}
