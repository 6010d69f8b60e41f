//! Output files that are written atomically: a temporary file in the same directory, renamed over
//! the target only when the run succeeded, so a failed run never clobbers the last good file.

use crate::error::{Error, Result, write_error};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// stdout, or a file that appears (by rename) only on `commit`.
pub enum Output {
    Stdout(io::Stdout),
    File {
        path: PathBuf,
        temp: tempfile::NamedTempFile,
    },
}

impl Output {
    /// `None` or `-` means stdout.
    pub fn create(path: Option<&Path>) -> Result<Self> {
        Self::create_with_mode(path, None)
    }

    /// Like `create`, with a Unix mode for the file (0o600 for files that hold secrets).
    pub fn create_with_mode(path: Option<&Path>, mode: Option<u32>) -> Result<Self> {
        match path {
            None => Ok(Output::Stdout(io::stdout())),
            Some(p) if p == Path::new("-") => Ok(Output::Stdout(io::stdout())),
            Some(path) => {
                let dir = match path.parent() {
                    Some(d) if !d.as_os_str().is_empty() => d,
                    _ => Path::new("."),
                };
                let temp = tempfile::Builder::new()
                    .prefix(&format!(
                        ".{}.",
                        path.file_name().and_then(|n| n.to_str()).unwrap_or("out")
                    ))
                    .suffix(".tmp")
                    .tempfile_in(dir)
                    .map_err(|e| {
                        Error::io(format!(
                            "{}: cannot create a temporary file: {e}",
                            path.display()
                        ))
                    })?;
                #[cfg(unix)]
                {
                    use std::os::unix::fs::PermissionsExt;
                    // tempfile creates 0600; ordinary outputs get the usual 0644.
                    let mode = mode.unwrap_or(0o644);
                    std::fs::set_permissions(temp.path(), std::fs::Permissions::from_mode(mode))
                        .map_err(|e| Error::io(format!("{}: {e}", path.display())))?;
                }
                Ok(Output::File {
                    path: path.to_path_buf(),
                    temp,
                })
            }
        }
    }

    pub fn name(&self) -> String {
        match self {
            Output::Stdout(_) => "stdout".into(),
            Output::File { path, .. } => path.display().to_string(),
        }
    }

    /// Makes the output final: flushes, syncs and renames a file into place.
    pub fn commit(self) -> Result<()> {
        match self {
            Output::Stdout(mut out) => out.flush().map_err(|e| write_error("stdout", &e)),
            Output::File { path, temp } => {
                temp.as_file()
                    .sync_all()
                    .map_err(|e| write_error(&path.display().to_string(), &e))?;
                temp.persist(&path)
                    .map_err(|e| Error::io(format!("{}: {}", path.display(), e.error)))?;
                Ok(())
            }
        }
    }
}

impl Write for Output {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Output::Stdout(out) => out.write(buf),
            Output::File { temp, .. } => temp.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Output::Stdout(out) => out.flush(),
            Output::File { temp, .. } => temp.flush(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_appears_only_on_commit_and_dropping_keeps_the_old_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.jsonl");
        std::fs::write(&path, "old\n").unwrap();
        {
            let mut out = Output::create(Some(&path)).unwrap();
            out.write_all(b"half").unwrap();
            // dropped without commit: a failed run
        }
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "old\n");
        let mut out = Output::create(Some(&path)).unwrap();
        out.write_all(b"new\n").unwrap();
        out.commit().unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "new\n");
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            1,
            "no temporary file left behind"
        );
    }
}
