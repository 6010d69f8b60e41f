//! The engine-connection argument block: `--url`, `--user`, `--ca-file`, `--password-file`, with
//! the environment variables every tool that talks to (or names) an oVirt engine reads.

use clap::Args;
use std::path::PathBuf;

/// The path of the engine's REST API under its host.
pub const API_PATH: &str = "/ovirt-engine/api";

/// `--url` (OVIRT_URL), `--user` (OVIRT_USER), `--ca-file` (OVIRT_CA), `--password-file`: how to
/// reach and log in to an engine. The password itself comes from OVIRT_PASSWORD or
/// `--password-file`, never from an argument. Flatten it into a tool's arguments.
#[derive(Debug, Clone, Args, Default)]
pub struct Engine {
    /// The engine's API URL, e.g. https://engine.example.com/ovirt-engine/api
    #[arg(long, value_name = "URL", env = "OVIRT_URL")]
    pub url: String,

    /// The user to log in as, with its profile, e.g. admin@internal
    #[arg(long, value_name = "USER@PROFILE", env = "OVIRT_USER")]
    pub user: Option<String>,

    /// Read the password from the first line of FILE (else OVIRT_PASSWORD is used)
    #[arg(long, value_name = "FILE")]
    pub password_file: Option<PathBuf>,

    /// The engine's CA certificate(s), PEM (its CA is at
    /// https://ENGINE/ovirt-engine/services/pki-resource?resource=ca-certificate&format=X509-PEM-CA)
    #[arg(long, value_name = "FILE", env = "OVIRT_CA")]
    pub ca_file: Option<PathBuf>,
}

impl Engine {
    /// `--user`, or a usage error naming the flag and its variable.
    pub fn user(&self) -> crate::Result<&str> {
        self.user.as_deref().ok_or_else(|| {
            crate::Error::usage("--user is required (or OVIRT_USER in the environment)")
        })
    }

    /// The password: the first line of `--password-file`, else OVIRT_PASSWORD; None when neither
    /// is given (an empty one is the caller's to refuse, with its own message). A file that
    /// cannot be read is a configuration error (78) naming it.
    pub fn password(&self) -> crate::Result<Option<String>> {
        match &self.password_file {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| {
                    crate::Error::config(format!(
                        "{}: cannot read the password file: {e}",
                        path.display()
                    ))
                })?;
                Ok(Some(text.lines().next().unwrap_or_default().to_string()))
            }
            None => Ok(std::env::var("OVIRT_PASSWORD").ok()),
        }
    }

    /// The hint for `--url`, when its path is not the API's: see [`api_path_hint`].
    pub fn url_hint(&self) -> Option<String> {
        api_path_hint(&self.url)
    }
}

/// When `url` does not end with the API path (`https://engine.example.com`), the URL that most
/// likely was meant, as a hint to append to an error: ` (the engine's API is at
/// https://engine.example.com/ovirt-engine/api)`. None when the path is the API's.
pub fn api_path_hint(url: &str) -> Option<String> {
    let parsed = url::Url::parse(url.trim()).ok()?;
    let path = parsed.path().trim_end_matches('/');
    if path.ends_with(API_PATH) {
        return None;
    }
    let mut meant = parsed.clone();
    let base = path.strip_suffix("/ovirt-engine").unwrap_or(path);
    meant.set_path(&format!("{base}{API_PATH}"));
    meant.set_query(None);
    Some(format!(
        " (--url names the engine's API, which is at {}: is that what you meant?)",
        meant.as_str().trim_end_matches('/')
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_password_is_the_first_line_of_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pw");
        std::fs::write(&path, "s3cret\nsecond line\n").unwrap();
        let engine = Engine {
            password_file: Some(path.clone()),
            ..Engine::default()
        };
        assert_eq!(engine.password().unwrap().as_deref(), Some("s3cret"));
        std::fs::write(&path, "").unwrap();
        assert_eq!(engine.password().unwrap().as_deref(), Some(""));
        let missing = Engine {
            password_file: Some(dir.path().join("absent")),
            ..Engine::default()
        };
        let err = missing.password().unwrap_err();
        assert_eq!(err.code, crate::ExitCode::Config);
        assert!(
            err.message
                .contains("absent: cannot read the password file"),
            "{err}"
        );
    }

    #[test]
    fn the_hint_names_the_api_url() {
        assert_eq!(
            api_path_hint("https://engine.example.com/ovirt-engine/api"),
            None
        );
        assert_eq!(
            api_path_hint("https://engine.example.com/ovirt-engine/api/"),
            None
        );
        for url in [
            "https://engine.example.com",
            "https://engine.example.com/",
            "https://engine.example.com/ovirt-engine",
        ] {
            let hint = api_path_hint(url).unwrap();
            assert!(
                hint.contains("at https://engine.example.com/ovirt-engine/api:"),
                "{url}: {hint}"
            );
        }
        let hint = api_path_hint("https://127.0.0.1:8443/api").unwrap();
        assert!(
            hint.contains("https://127.0.0.1:8443/api/ovirt-engine/api"),
            "{hint}"
        );
        assert_eq!(api_path_hint("not a url"), None);
    }
}
