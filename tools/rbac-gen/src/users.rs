//! The user map: a CSV of `ovirt principal,cluster name` rows, for sites whose cluster user names
//! are not the oVirt ones without their domain.

use common::{Error, Result};
use std::collections::BTreeMap;
use std::path::Path;

#[derive(Debug, Default)]
pub struct UserMap {
    names: BTreeMap<String, String>,
}

impl UserMap {
    /// Reads the CSV; blank lines and `#` comments are skipped, and a first row whose first column
    /// says `principal` is taken as a header. Errors name `file:line`.
    pub fn load(path: &Path) -> Result<Self> {
        let text = common::jsonl::read_to_string(path)?;
        Self::parse(&path.display().to_string(), &text)
    }

    pub fn parse(name: &str, text: &str) -> Result<Self> {
        let mut names = BTreeMap::new();
        for row in common::csvrows::read(name, text, &["principal"])? {
            let line = row.line;
            if row.fields.len() != 2 || row.fields.iter().any(String::is_empty) {
                return Err(Error::config(format!(
                    "{name}:{line}: expected 2 columns (ovirt principal, cluster name), found {}",
                    row.quoted()
                )));
            }
            let (principal, cluster) = (row.fields[0].clone(), row.fields[1].clone());
            if let Some(previous) = names.insert(principal.clone(), cluster.clone())
                && previous != cluster
            {
                return Err(Error::config(format!(
                    "{name}:{line}: {principal} is mapped twice ({previous}, {cluster})"
                )));
            }
        }
        Ok(UserMap { names })
    }

    pub fn get(&self, principal: &str) -> Option<&str> {
        self.names.get(principal).map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_rows_header_and_comments() {
        let map = UserMap::parse(
            "u.csv",
            "ovirt_principal,cluster_name\n# people\nalice@example.com, alice.k\n\n\"x,y@z\",xy\n",
        )
        .unwrap();
        assert_eq!(map.get("alice@example.com"), Some("alice.k"));
        assert_eq!(map.get("x,y@z"), Some("xy"));
        assert_eq!(map.get("bob"), None);
    }

    #[test]
    fn errors_name_file_and_line() {
        let err =
            UserMap::parse("u.csv", "alice@example.com,alice\nbob@example.com\n").unwrap_err();
        assert!(
            err.message.starts_with("u.csv:2: expected 2 columns"),
            "{}",
            err.message
        );
        assert_eq!(err.code, common::ExitCode::Config);
        let err = UserMap::parse("u.csv", "a,b\na,c\n").unwrap_err();
        assert!(
            err.message.starts_with("u.csv:2: a is mapped twice"),
            "{}",
            err.message
        );
    }
}
