//! Output files. A regular file (or a new one) is written atomically: a temporary file next to it,
//! renamed over it only when the run succeeded, so a failed or interrupted run never clobbers the
//! last good file. Anything else (a device, a FIFO) is written through and never replaced.

mod temp;

use crate::error::{Error, Result, write_error};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

#[cfg(test)]
use temp::live_paths;

/// What the `-o FILE` options of every tool (and plan-gen's `--report`) say after their first
/// line, in `--help` and the man pages.
const DETAILS: &str = "A regular FILE, or a new one, is written atomically: the output goes to \
a temporary file next to it (.FILE.liftkit-PID-XXXXXX.tmp), renamed over FILE only when the run \
succeeds. A failed or interrupted run (SIGINT, SIGTERM, SIGHUP) leaves FILE as it was and removes \
the temporary file; one left by a killed run (SIGKILL) is removed by the next run writing FILE. \
When FILE is a symlink, its target is replaced and the symlink stays. A FILE that is not a \
regular file (a device such as /dev/null, a FIFO, or a symlink to one) is written through, \
never replaced: a FIFO waits for a reader, as `cat > FILE` does. '-' is stdout.";

/// The long help of an output option: `first_line`, then how the file is written.
pub fn long_help(first_line: &str) -> String {
    format!("{first_line}\n\n{DETAILS}")
}

/// stdout, a file that appears (by rename) only on `commit`, or a non-regular file written through.
pub enum Output {
    Stdout(io::Stdout),
    /// A regular file (or none yet) at `target`: `path` itself, or the end of its symlinks.
    File {
        path: PathBuf,
        target: PathBuf,
        temp: temp::Temp,
    },
    /// A device, FIFO or socket (or a symlink to one), opened for writing as `cat > path` opens it.
    Direct {
        path: PathBuf,
        file: File,
    },
}

/// Where an output path leads.
enum Target {
    /// A regular file, or nothing yet: replaced atomically.
    Replace(PathBuf),
    /// Something else: written through.
    Direct,
}

/// Symlinks followed at most, as Linux's MAXSYMLINKS.
const MAX_SYMLINKS: usize = 40;

/// Where `path` leads. The kernel follows its symlinks (/proc's magic links to pipes included);
/// a symlink to a regular file is replaced at its target, and a dangling one creates its target.
fn resolve(path: &Path) -> io::Result<Target> {
    match fs::metadata(path) {
        Ok(meta) if meta.is_dir() => Err(io::Error::new(
            io::ErrorKind::IsADirectory,
            "is a directory",
        )),
        Ok(meta) if !meta.is_file() => Ok(Target::Direct),
        Ok(_) if fs::symlink_metadata(path)?.file_type().is_symlink() => {
            fs::canonicalize(path).map(Target::Replace)
        }
        Ok(_) => Ok(Target::Replace(path.to_path_buf())),
        Err(e) if e.kind() == io::ErrorKind::NotFound => to_create(path).map(Target::Replace),
        Err(e) => Err(e),
    }
}

/// The file to create for a `path` that leads nowhere: the end of its symlinks, if any.
fn to_create(path: &Path) -> io::Result<PathBuf> {
    let mut at = path.to_path_buf();
    for _ in 0..MAX_SYMLINKS {
        match fs::symlink_metadata(&at) {
            Ok(meta) if meta.file_type().is_symlink() => {
                let link = fs::read_link(&at)?;
                // Relative to the directory holding the link; join keeps an absolute one.
                at = at
                    .parent()
                    .map_or_else(|| link.clone(), |dir| dir.join(&link));
            }
            _ => return Ok(at),
        }
    }
    Err(io::Error::other("too many levels of symbolic links"))
}

impl Output {
    /// `None` or `-` means stdout.
    pub fn create(path: Option<&Path>) -> Result<Self> {
        Self::create_with_mode(path, None)
    }

    /// Like `create`, with a Unix mode for a file it creates (0o600 for files that hold secrets);
    /// a file written through keeps its own.
    pub fn create_with_mode(path: Option<&Path>, mode: Option<u32>) -> Result<Self> {
        let path = match path {
            Some(p) if p != Path::new("-") => p,
            _ => return Ok(Output::Stdout(io::stdout())),
        };
        let name = path.display();
        match resolve(path).map_err(|e| Error::io(format!("{name}: {e}")))? {
            Target::Direct => {
                // No truncation: a device may refuse it, and a FIFO has nothing to truncate.
                let file = OpenOptions::new()
                    .write(true)
                    .open(path)
                    .map_err(|e| Error::io(format!("{name}: cannot open for writing: {e}")))?;
                Ok(Output::Direct {
                    path: path.to_path_buf(),
                    file,
                })
            }
            Target::Replace(target) => {
                let temp = temp::Temp::create(&target, mode.unwrap_or(0o644)).map_err(|e| {
                    Error::io(format!("{name}: cannot create a temporary file: {e}"))
                })?;
                Ok(Output::File {
                    path: path.to_path_buf(),
                    target,
                    temp,
                })
            }
        }
    }

    pub fn name(&self) -> String {
        match self {
            Output::Stdout(_) => "stdout".into(),
            Output::File { path, .. } | Output::Direct { path, .. } => path.display().to_string(),
        }
    }

    /// Makes the output final: flushes, syncs and renames a file into place.
    pub fn commit(self) -> Result<()> {
        match self {
            Output::Stdout(mut out) => out.flush().map_err(|e| write_error("stdout", &e)),
            Output::File { path, target, temp } => {
                let name = path.display().to_string();
                temp.sync_all().map_err(|e| write_error(&name, &e))?;
                temp.persist(&target)
                    .map_err(|e| Error::io(format!("{name}: {e}")))
            }
            // Written through: nothing buffered, and fsync would fail on a FIFO.
            Output::Direct { path, mut file } => file
                .flush()
                .map_err(|e| write_error(&path.display().to_string(), &e)),
        }
    }
}

/// A temporary copy of an input that can be read only once (stdin, a pipe), for a tool that
/// reads its input twice: in the temporary directory, named and removed like an output's
/// temporary file (`.TOOL-spool.liftkit-PID-XXXXXX.tmp`, removed when dropped and on SIGINT,
/// SIGTERM and SIGHUP; one a killed run left is removed by the next run of the same tool).
pub struct Spool {
    temp: temp::Temp,
}

impl Spool {
    /// Copies all of `input` (named `name` in errors) into a new spool file of `tool`.
    pub fn copy(tool: &str, name: &str, input: &mut impl io::Read) -> Result<Self> {
        let at = std::env::temp_dir().join(format!("{tool}-spool"));
        let mut temp = temp::Temp::create(&at, 0o600)
            .map_err(|e| Error::io(format!("cannot create a temporary file for {name}: {e}")))?;
        io::copy(input, &mut temp).map_err(|e| Error::no_input(format!("{name}: {e}")))?;
        temp.flush()
            .map_err(|e| Error::io(format!("{name}: spool: {e}")))?;
        Ok(Spool { temp })
    }

    /// Where the copy is, to be opened for reading (as often as needed).
    pub fn path(&self) -> Result<&Path> {
        self.temp
            .path()
            .map_err(|e| Error::io(format!("spool: {e}")))
    }
}

impl Write for Output {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Output::Stdout(out) => out.write(buf),
            Output::File { temp, .. } => temp.write(buf),
            Output::Direct { file, .. } => file.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Output::Stdout(out) => out.flush(),
            Output::File { temp, .. } => temp.flush(),
            Output::Direct { file, .. } => file.flush(),
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

    /// The names in `dir`, sorted.
    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    /// Reads the FIFO at `path` to its end in a thread (opening it waits for a writer).
    #[cfg(unix)]
    fn read_fifo(path: &Path) -> std::sync::mpsc::Receiver<String> {
        let path = path.to_path_buf();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || tx.send(fs::read_to_string(path).unwrap()));
        rx
    }

    /// What came through the FIFO; a reader still waiting after 10 s got no writer at all.
    #[cfg(unix)]
    fn received(reader: std::sync::mpsc::Receiver<String>) -> String {
        reader
            .recv_timeout(std::time::Duration::from_secs(10))
            .expect("nothing was written through the FIFO")
    }

    #[cfg(unix)]
    fn mkfifo(path: &Path) {
        let status = std::process::Command::new("mkfifo")
            .arg(path)
            .status()
            .unwrap();
        assert!(status.success(), "mkfifo {}", path.display());
    }

    #[cfg(unix)]
    fn kind(path: &Path) -> &'static str {
        use std::os::unix::fs::FileTypeExt;
        let t = fs::symlink_metadata(path).unwrap().file_type();
        match () {
            _ if t.is_symlink() => "symlink",
            _ if t.is_file() => "file",
            _ if t.is_dir() => "dir",
            _ if t.is_fifo() => "fifo",
            _ if t.is_char_device() => "char device",
            _ if t.is_block_device() => "block device",
            _ if t.is_socket() => "socket",
            _ => "other",
        }
    }

    #[cfg(unix)]
    #[test]
    fn a_fifo_is_written_through_and_stays_a_fifo() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("out.jsonl");
        mkfifo(&fifo);
        let reader = read_fifo(&fifo);
        let mut out = Output::create(Some(&fifo)).unwrap();
        out.write_all(b"{\"id\":1}\n").unwrap();
        out.commit().unwrap();
        assert_eq!(received(reader), "{\"id\":1}\n");
        assert_eq!(kind(&fifo), "fifo");
        assert_eq!(names(dir.path()), ["out.jsonl"], "no temporary file");
    }

    #[cfg(unix)]
    #[test]
    fn a_symlink_to_a_fifo_is_written_through_and_both_stay() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("pipe");
        mkfifo(&fifo);
        let link = dir.path().join("out.jsonl");
        std::os::unix::fs::symlink("pipe", &link).unwrap();
        let reader = read_fifo(&fifo);
        let mut out = Output::create(Some(&link)).unwrap();
        out.write_all(b"through\n").unwrap();
        out.commit().unwrap();
        assert_eq!(received(reader), "through\n");
        assert_eq!((kind(&link), kind(&fifo)), ("symlink", "fifo"));
        assert_eq!(fs::read_link(&link).unwrap(), Path::new("pipe"));
        assert_eq!(names(dir.path()), ["out.jsonl", "pipe"]);
    }

    /// The issue's `-o` symlink to /proc/self/fd/N: the kernel's magic link to a pipe.
    #[cfg(target_os = "linux")]
    #[test]
    fn a_symlink_to_a_proc_fd_of_a_pipe_is_written_through() {
        use std::io::Read;
        use std::os::fd::AsRawFd;
        let (mut reader, writer) = io::pipe().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let link = dir.path().join("out.jsonl");
        let fd = format!("/proc/self/fd/{}", writer.as_raw_fd());
        std::os::unix::fs::symlink(&fd, &link).unwrap();
        let mut out = Output::create(Some(&link)).unwrap();
        out.write_all(b"through\n").unwrap();
        out.commit().unwrap();
        drop(writer);
        let mut text = String::new();
        reader.read_to_string(&mut text).unwrap();
        assert_eq!(text, "through\n");
        assert_eq!(kind(&link), "symlink");
        assert_eq!(names(dir.path()), ["out.jsonl"]);
    }

    #[cfg(unix)]
    #[test]
    fn a_symlink_to_a_regular_file_keeps_the_link_and_replaces_the_target_next_to_it() {
        let dir = tempfile::tempdir().unwrap();
        let (links, files) = (dir.path().join("links"), dir.path().join("files"));
        fs::create_dir_all(&links).unwrap();
        fs::create_dir_all(&files).unwrap();
        let target = files.join("real.jsonl");
        fs::write(&target, "old\n").unwrap();
        let link = links.join("out.jsonl");
        // Two hops, one relative and one absolute.
        std::os::unix::fs::symlink(&target, links.join("hop")).unwrap();
        std::os::unix::fs::symlink("hop", &link).unwrap();
        {
            let mut out = Output::create(Some(&link)).unwrap();
            out.write_all(b"half").unwrap();
            let temps = names(&files);
            assert_eq!(
                temps.len(),
                2,
                "the temporary file is next to the target: {temps:?}"
            );
            // dropped without commit: a failed run
        }
        assert_eq!(fs::read_to_string(&target).unwrap(), "old\n");
        assert_eq!(names(&files), ["real.jsonl"]);
        let mut out = Output::create(Some(&link)).unwrap();
        out.write_all(b"new\n").unwrap();
        out.commit().unwrap();
        assert_eq!(fs::read_to_string(&target).unwrap(), "new\n");
        assert_eq!((kind(&link), kind(&target)), ("symlink", "file"));
        assert_eq!(fs::read_link(&link).unwrap(), Path::new("hop"));
        assert_eq!(names(&links), ["hop", "out.jsonl"]);
        assert_eq!(names(&files), ["real.jsonl"]);
    }

    #[cfg(unix)]
    #[test]
    fn a_dangling_symlink_creates_its_target_and_stays_a_symlink() {
        let dir = tempfile::tempdir().unwrap();
        let link = dir.path().join("out.jsonl");
        std::os::unix::fs::symlink("later.jsonl", &link).unwrap();
        let mut out = Output::create(Some(&link)).unwrap();
        out.write_all(b"new\n").unwrap();
        out.commit().unwrap();
        assert_eq!(kind(&link), "symlink");
        assert_eq!(
            fs::read_to_string(dir.path().join("later.jsonl")).unwrap(),
            "new\n"
        );
    }

    #[cfg(unix)]
    #[test]
    fn a_socket_is_not_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("out.sock");
        let _listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
        // Linux refuses open() on a socket (ENXIO): an I/O error, and the socket stays.
        let err = Output::create(Some(&socket))
            .err()
            .expect("a socket cannot be opened");
        assert_eq!(err.code, crate::ExitCode::IoErr, "{err}");
        assert!(err.message.contains("cannot open for writing"), "{err}");
        assert_eq!(kind(&socket), "socket");
        assert_eq!(names(dir.path()), ["out.sock"]);
    }

    #[test]
    fn a_directory_is_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let err = Output::create(Some(dir.path())).err().expect("a directory");
        assert_eq!(err.code, crate::ExitCode::IoErr);
        assert_eq!(
            err.message,
            format!("{}: is a directory", dir.path().display())
        );
    }

    /// Character devices made here with mknod (root only), never the machine's /dev: 1,3 is
    /// what /dev/null is and 1,7 what /dev/full is (Linux's devices.txt).
    #[cfg(target_os = "linux")]
    #[test]
    fn a_character_device_is_written_through_and_stays_a_device() {
        if !rustix::process::geteuid().is_root() {
            eprintln!("skipped: mknod needs root");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let null = dir.path().join("null");
        let full = dir.path().join("full");
        for (node, minor) in [(&null, "3"), (&full, "7")] {
            let status = std::process::Command::new("mknod")
                .arg(node)
                .args(["c", "1", minor])
                .status()
                .unwrap();
            assert!(status.success(), "mknod {}", node.display());
        }
        let mut out = Output::create(Some(&null)).unwrap();
        out.write_all(&[b'x'; 100_000]).unwrap();
        out.commit().unwrap();
        let mut out = Output::create(Some(&full)).unwrap();
        let err = out.write_all(b"x").unwrap_err();
        assert_eq!(
            err.raw_os_error(),
            Some(28),
            "ENOSPC from the full device: {err}"
        );
        drop(out);
        assert_eq!((kind(&null), kind(&full)), ("char device", "char device"));
        use std::os::unix::fs::MetadataExt;
        assert_eq!(
            fs::metadata(&null).unwrap().rdev(),
            fs::metadata("/dev/null").unwrap().rdev()
        );
        assert_eq!(names(dir.path()), ["full", "null"]);
    }

    #[test]
    fn temporary_files_are_registered_while_they_exist_and_named_for_liftkit() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.jsonl");
        let out = Output::create(Some(&path)).unwrap();
        let temps: Vec<PathBuf> = live_paths()
            .into_iter()
            .filter(|p| p.starts_with(dir.path()))
            .collect();
        assert_eq!(temps.len(), 1, "{temps:?}");
        let name = temps[0].file_name().unwrap().to_str().unwrap().to_string();
        let prefix = format!(".out.jsonl.liftkit-{}-", std::process::id());
        let random = name
            .strip_prefix(&prefix)
            .and_then(|r| r.strip_suffix(".tmp"));
        assert_eq!(random.map(str::len), Some(6), "{name}");
        assert!(temps[0].exists());
        out.commit().unwrap();
        assert!(!live_paths().iter().any(|p| p.starts_with(dir.path())));
        let out = Output::create(Some(&path)).unwrap();
        assert!(live_paths().iter().any(|p| p.starts_with(dir.path())));
        drop(out);
        assert!(!live_paths().iter().any(|p| p.starts_with(dir.path())));
        assert_eq!(names(dir.path()), ["out.jsonl"]);
    }

    #[cfg(unix)]
    #[test]
    fn a_dead_writers_temporary_file_of_the_same_name_is_swept_and_no_other() {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead = child.id();
        child.wait().unwrap();
        let me = std::process::id();
        let dir = tempfile::tempdir().unwrap();
        let planted = [
            format!(".out.jsonl.liftkit-{dead}-aB3dE9.tmp"), // swept
            format!(".out.jsonl.liftkit-{me}-aB3dE9.tmp"),   // a live writer's
            format!(".other.jsonl.liftkit-{dead}-aB3dE9.tmp"), // another output's
            format!(".out.jsonl.{dead}-aB3dE9.tmp"),         // not liftkit's marker
            format!(".out.jsonl.liftkit-{dead}-aB3dE9.tmp.keep"), // not the pattern
        ];
        for name in &planted {
            fs::write(dir.path().join(name), "partial").unwrap();
        }
        let path = dir.path().join("out.jsonl");
        fs::write(&path, "old\n").unwrap();
        let mut out = Output::create(Some(&path)).unwrap();
        out.write_all(b"new\n").unwrap();
        out.commit().unwrap();
        let mut expected: Vec<String> = planted[1..].to_vec();
        expected.push("out.jsonl".into());
        expected.sort();
        assert_eq!(names(dir.path()), expected);
    }
}
