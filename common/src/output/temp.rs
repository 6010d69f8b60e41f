//! The temporary files of atomic outputs, named `.NAME.liftkit-PID-XXXXXX.tmp` (a marker only
//! liftkit uses, and the writer's pid): removed when dropped, on SIGINT, SIGTERM and SIGHUP, and,
//! when a writer was killed outright (SIGKILL), by the next run that writes the same NAME.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};
use tracing::debug;

/// Between the output's name and the writer's pid.
const MARKER: &str = ".liftkit-";

/// The temporary files of this process that exist now. A signal handler removes them while it
/// holds the lock, so a file is created and registered, or renamed or removed and unregistered,
/// under the lock: the handler never sees one half done.
static LIVE: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

fn live() -> MutexGuard<'static, Vec<PathBuf>> {
    LIVE.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The temporary files registered now.
#[cfg(test)]
pub fn live_paths() -> Vec<PathBuf> {
    live().clone()
}

/// A registered temporary file; `None` only once persisted or dropped.
pub struct Temp {
    file: Option<tempfile::NamedTempFile>,
}

impl Temp {
    /// Creates the temporary file for `target` next to it, with the Unix `mode`, after removing
    /// those a dead writer left for the same name.
    pub fn create(target: &Path, mode: u32) -> io::Result<Temp> {
        signals::watch();
        let dir = match target.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        let name = target
            .file_name()
            .map_or_else(|| "out".into(), |n| n.to_string_lossy());
        let prefix = format!(".{name}{MARKER}");
        sweep(dir, &prefix);
        let mut live = live();
        let file = tempfile::Builder::new()
            .prefix(&format!("{prefix}{}-", std::process::id()))
            .suffix(".tmp")
            .rand_bytes(6)
            .tempfile_in(dir)?;
        live.push(file.path().to_path_buf());
        drop(live);
        let temp = Temp { file: Some(file) };
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            // tempfile creates 0600; ordinary outputs get the usual 0644, whatever the umask.
            fs::set_permissions(temp.path()?, fs::Permissions::from_mode(mode))?;
        }
        #[cfg(not(unix))]
        let _ = mode;
        Ok(temp)
    }

    fn file(&mut self) -> io::Result<&mut tempfile::NamedTempFile> {
        self.file.as_mut().ok_or_else(gone)
    }

    pub fn path(&self) -> io::Result<&Path> {
        self.file.as_ref().map(|f| f.path()).ok_or_else(gone)
    }

    pub fn sync_all(&self) -> io::Result<()> {
        self.file.as_ref().ok_or_else(gone)?.as_file().sync_all()
    }

    /// Renames the file over `target`; on failure the temporary file is removed.
    pub fn persist(mut self, target: &Path) -> io::Result<()> {
        let file = self.file.take().ok_or_else(gone)?;
        let path = file.path().to_path_buf();
        let mut live = live();
        let result = file.persist(target);
        live.retain(|p| *p != path);
        match result {
            Ok(_) => Ok(()),
            Err(e) => {
                drop(e.file); // removes it while the lock is held
                Err(e.error)
            }
        }
    }
}

fn gone() -> io::Error {
    io::Error::other("the temporary file is gone")
}

impl Drop for Temp {
    fn drop(&mut self) {
        if let Some(file) = self.file.take() {
            let mut live = live();
            live.retain(|p| p != file.path());
            drop(file); // removes it while the lock is held
        }
    }
}

impl Write for Temp {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.file()?.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.file()?.flush()
    }
}

/// Removes the temporary files in `dir` named `{prefix}PID-XXXXXX.tmp` whose writer is no longer
/// running. A pid in use again by another process keeps its file until a later run.
fn sweep(dir: &Path, prefix: &str) {
    let Ok(entries) = fs::read_dir(dir) else {
        return; // creating the temporary file will say why
    };
    for entry in entries.flatten() {
        let file_name = entry.file_name();
        let Some(pid) = file_name
            .to_str()
            .and_then(|n| n.strip_prefix(prefix))
            .and_then(writer_pid)
        else {
            continue;
        };
        if pid == std::process::id() || is_running(pid) {
            continue;
        }
        if !entry.file_type().is_ok_and(|t| t.is_file()) {
            continue;
        }
        let path = entry.path();
        match fs::remove_file(&path) {
            Ok(()) => debug!("removed {}, left by process {pid}", path.display()),
            Err(e) => debug!("cannot remove {}: {e}", path.display()),
        }
    }
}

/// The pid in `PID-XXXXXX.tmp`, what follows the marker in a temporary file's name.
fn writer_pid(rest: &str) -> Option<u32> {
    let (pid, random) = rest.strip_suffix(".tmp")?.split_once('-')?;
    let random_ok = random.len() == 6 && random.bytes().all(|b| b.is_ascii_alphanumeric());
    let pid_ok = !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit());
    if random_ok && pid_ok {
        pid.parse().ok()
    } else {
        None
    }
}

/// Whether process `pid` runs: it exists (kill with signal 0: only "no such process" means gone)
/// and, where /proc says, is not a zombie (killed, not yet reaped: it writes no more).
#[cfg(unix)]
fn is_running(pid: u32) -> bool {
    use rustix::process::{Pid, test_kill_process};
    let Some(raw) = i32::try_from(pid).ok().and_then(Pid::from_raw) else {
        return true;
    };
    test_kill_process(raw) != Err(rustix::io::Errno::SRCH) && !is_zombie(pid)
}

/// The state in /proc/PID/stat, after the command name in parentheses (which may hold any byte).
#[cfg(unix)]
fn is_zombie(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            let (_, rest) = stat.rsplit_once(')')?;
            rest.trim_start().chars().next()
        })
        .is_some_and(|state| state == 'Z' || state == 'X')
}

#[cfg(not(unix))]
fn is_running(_pid: u32) -> bool {
    true
}

#[cfg(unix)]
mod signals {
    //! A thread that waits for SIGINT, SIGTERM and SIGHUP, removes the live temporary files and
    //! exits with 128 + the signal, as the exit-code table says.
    use super::live;
    use crate::exit::ExitCode;
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    use signal_hook::iterator::Signals;
    use std::sync::Once;

    /// Starts the thread, once per process.
    pub fn watch() {
        static STARTED: Once = Once::new();
        STARTED.call_once(|| {
            // A signal ignored when the tool started (`nohup`, a background job of a script)
            // stays ignored: catching it would turn it into an exit.
            let watched: Vec<i32> = [SIGINT, SIGTERM, SIGHUP]
                .into_iter()
                .filter(|&s| !ignored_at_start(s))
                .collect();
            let mut signals = match Signals::new(&watched) {
                Ok(signals) => signals,
                Err(e) => {
                    tracing::warn!(
                        "cannot watch for signals ({e}): one may leave a temporary file"
                    );
                    return;
                }
            };
            let started = std::thread::Builder::new()
                .name("liftkit-signals".into())
                .spawn(move || {
                    if let Some(signal) = signals.forever().next() {
                        remove_live_and_exit(signal);
                    }
                });
            if let Err(e) = started {
                tracing::warn!("cannot watch for signals ({e}): one may leave a temporary file");
            }
        });
    }

    fn remove_live_and_exit(signal: i32) -> ! {
        // Held until the process ends: no file is renamed into place or created after this.
        let live = live();
        for path in live.iter() {
            let _ = std::fs::remove_file(path);
        }
        let code = match signal {
            SIGINT => ExitCode::Interrupted,
            SIGTERM => ExitCode::Terminated,
            _ => ExitCode::HungUp,
        };
        std::process::exit(code.code())
    }

    /// Whether `signal` is ignored, from the SigIgn mask in /proc/self/status (Linux; reading the
    /// disposition with sigaction would need unsafe code). Elsewhere: taken as not ignored.
    fn ignored_at_start(signal: i32) -> bool {
        let Ok(status) = std::fs::read_to_string("/proc/self/status") else {
            return false;
        };
        status
            .lines()
            .find_map(|l| l.strip_prefix("SigIgn:"))
            .and_then(|mask| u64::from_str_radix(mask.trim(), 16).ok())
            .is_some_and(|mask| mask & (1 << (signal - 1)) != 0)
    }
}

#[cfg(not(unix))]
mod signals {
    pub fn watch() {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pid_is_read_only_from_a_name_liftkit_writes() {
        assert_eq!(writer_pid("4242-a1B2c3.tmp"), Some(4242));
        for other in [
            "4242-a1B2c3",
            "4242-a1B2c.tmp",
            "4242-a1B2c3d.tmp",
            "-a1B2c3.tmp",
            "+42-a1B2c3.tmp",
            "42x-a1B2c3.tmp",
            "4242-a1B2-3.tmp",
        ] {
            assert_eq!(writer_pid(other), None, "{other}");
        }
    }

    /// A killed process stays a zombie until its parent reaps it, and kill(pid, 0) still finds it.
    #[cfg(target_os = "linux")]
    #[test]
    fn a_zombie_is_not_running() {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        let stat = format!("/proc/{pid}/stat");
        let start = std::time::Instant::now();
        while !fs::read_to_string(&stat).unwrap().contains(") Z ") {
            assert!(start.elapsed().as_secs() < 10, "no zombie");
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert!(!is_running(pid));
        child.wait().unwrap();
    }

    #[cfg(unix)]
    #[test]
    fn a_reaped_child_is_not_running_and_this_process_is() {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        assert!(!is_running(pid));
        assert!(is_running(std::process::id()));
    }
}
