//! `-o FILE` as every tool writes it (common's Output), seen through real binaries: devices, FIFOs
//! and symlinks to them are written through and stay what they were; a symlink to a regular file
//! stays a symlink; a run stopped by a signal leaves no temporary file and the old output intact;
//! a temporary file left by a run killed outright is swept by the next. Devices are made with
//! mknod in a temporary directory (as root only), never the machine's /dev (issue 13).
#![cfg(target_os = "linux")]

mod pipeline;
mod support;

use pipeline::*;
use std::fs;
use std::io::Write;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

const VS: &str = env!("CARGO_BIN_EXE_vm-select");
const DUMP: &str = env!("CARGO_BIN_EXE_ovirt-dump");

/// What vm-select prints on stdout for the demo export, with no criteria: the reference each
/// file output is compared with.
fn expected() -> Vec<u8> {
    let records = demo_records().to_str().unwrap();
    let out = run(VS, &[records], b"");
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(!out.stdout.is_empty());
    out.stdout
}

fn vm_select_to(output: &Path) -> std::process::Output {
    let records = demo_records().to_str().unwrap();
    run(VS, &["-o", output.to_str().unwrap(), records], b"")
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

fn kind(path: &Path) -> &'static str {
    let t = fs::symlink_metadata(path).unwrap().file_type();
    match () {
        _ if t.is_symlink() => "symlink",
        _ if t.is_file() => "file",
        _ if t.is_fifo() => "fifo",
        _ if t.is_char_device() => "char device",
        _ => "other",
    }
}

fn mkfifo(path: &Path) {
    let status = Command::new("mkfifo").arg(path).status().unwrap();
    assert!(status.success(), "mkfifo {}", path.display());
}

/// Reads the FIFO at `path` to its end in a thread (opening it waits for a writer).
fn read_fifo(path: &Path) -> Receiver<Vec<u8>> {
    let path = path.to_path_buf();
    let (tx, rx) = channel();
    std::thread::spawn(move || tx.send(fs::read(path).unwrap()));
    rx
}

/// What came through the FIFO; none after 30 s means nothing ever opened it for writing.
fn received(reader: Receiver<Vec<u8>>) -> Vec<u8> {
    reader
        .recv_timeout(Duration::from_secs(30))
        .expect("nothing was written through the FIFO")
}

#[test]
fn a_fifo_output_is_written_through_and_stays_a_fifo() {
    let expected = expected();
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("out.jsonl");
    mkfifo(&fifo);
    let reader = read_fifo(&fifo);
    let out = vm_select_to(&fifo);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(received(reader) == expected, "the FIFO carried the records");
    assert_eq!(kind(&fifo), "fifo");
    assert_eq!(names(dir.path()), ["out.jsonl"], "no temporary file");
}

#[test]
fn a_symlink_to_a_fifo_is_written_through_and_both_stay() {
    let expected = expected();
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("pipe");
    mkfifo(&fifo);
    let link = dir.path().join("out.jsonl");
    std::os::unix::fs::symlink(&fifo, &link).unwrap();
    let reader = read_fifo(&fifo);
    let out = vm_select_to(&link);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(received(reader) == expected, "the FIFO carried the records");
    assert_eq!((kind(&link), kind(&fifo)), ("symlink", "fifo"));
    assert_eq!(names(dir.path()), ["out.jsonl", "pipe"]);
}

/// The case: a symlink to /proc/self/fd/1 writes to the tool's stdout (a pipe here).
#[test]
fn a_symlink_to_proc_self_fd_1_writes_to_stdout() {
    let expected = expected();
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("out.jsonl");
    std::os::unix::fs::symlink("/proc/self/fd/1", &link).unwrap();
    let out = vm_select_to(&link);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(out.stdout == expected, "the records came out on stdout");
    assert_eq!(kind(&link), "symlink");
    assert_eq!(fs::read_link(&link).unwrap(), Path::new("/proc/self/fd/1"));
    assert_eq!(names(dir.path()), ["out.jsonl"]);
}

#[test]
fn a_symlink_to_a_regular_file_stays_a_symlink_and_its_target_is_replaced() {
    let expected = expected();
    let dir = tempfile::tempdir().unwrap();
    let (links, files) = (dir.path().join("links"), dir.path().join("files"));
    fs::create_dir_all(&links).unwrap();
    fs::create_dir_all(&files).unwrap();
    let target = files.join("inventory.jsonl");
    fs::write(&target, "old\n").unwrap();
    let link = links.join("out.jsonl");
    // A relative link target inside the temp dir (links/ -> ../files/), resolved from the link.
    let relative = Path::new("..").join("files").join("inventory.jsonl");
    std::os::unix::fs::symlink(&relative, &link).unwrap();
    let out = vm_select_to(&link);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(kind(&link), "symlink");
    assert_eq!(fs::read_link(&link).unwrap(), relative);
    assert!(
        fs::read(&target).unwrap() == expected,
        "the target holds the records"
    );
    assert_eq!(names(&links), ["out.jsonl"]);
    assert_eq!(names(&files), ["inventory.jsonl"]);
}

/// As the issue found with `-o /dev/full` and `-o /dev/null`, on nodes made here: 1,3 is the
/// null device and 1,7 the full one (Linux's devices.txt).
#[test]
fn device_nodes_are_written_through_and_stay_devices() {
    if !is_root() {
        eprintln!("skipped: mknod needs root");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (null, full) = (dir.path().join("null"), dir.path().join("full"));
    for (node, minor) in [(&null, "3"), (&full, "7")] {
        let status = Command::new("mknod")
            .arg(node)
            .args(["c", "1", minor])
            .status()
            .unwrap();
        assert!(status.success(), "mknod {}", node.display());
    }
    let rdev = |p: &Path| fs::metadata(p).unwrap().rdev();
    let (null_rdev, full_rdev) = (rdev(&null), rdev(&full));
    let out = vm_select_to(&null);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let out = vm_select_to(&full);
    // vm-select names its output "output" in a write error (not the path): its own wording.
    assert_fails(&out, 74, "vm-select: ");
    assert!(
        stderr(&out).contains("No space left on device"),
        "{}",
        stderr(&out)
    );
    assert_eq!((kind(&null), kind(&full)), ("char device", "char device"));
    assert_eq!((rdev(&null), rdev(&full)), (null_rdev, full_rdev));
    assert_eq!(names(dir.path()), ["full", "null"]);
}

fn is_root() -> bool {
    let out = Command::new("id").arg("-u").output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim() == "0"
}

/// Whether this process ignores `signal` (SigIgn in /proc/self/status); a child inherits that.
fn ignored_here(signal: i32) -> bool {
    let status = fs::read_to_string("/proc/self/status").unwrap();
    let mask = status
        .lines()
        .find_map(|l| l.strip_prefix("SigIgn:"))
        .unwrap();
    u64::from_str_radix(mask.trim(), 16).unwrap() & (1 << (signal - 1)) != 0
}

fn kill(child: &Child, signal: &str) {
    let status = Command::new("kill")
        .args(["-s", signal, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill -s {signal}");
}

/// Waits up to `limit` for `child` to end; `None` if it is still running.
fn wait_for(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        if start.elapsed() > limit {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits until `dir` holds a file besides `keep` (the tool's temporary file, whatever its name).
fn temporary_file_in(dir: &Path, keep: &str, child: &mut Child) -> String {
    let start = Instant::now();
    loop {
        if let Some(name) = names(dir).into_iter().find(|n| n != keep) {
            return name;
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!("the tool ended ({status}) before creating its temporary file");
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "no temporary file"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// vm-select writing `dir/out.jsonl` from a FIFO that the returned writer keeps open: given the
/// whole demo export, it has written part of it and waits for more, mid-run. `wrapper` runs it
/// (nohup).
struct BlockedRun {
    child: Child,
    _input_dir: tempfile::TempDir,
    input: fs::File,
    temp: String,
}

fn vm_select_blocked(dir: &Path, wrapper: &[&str]) -> BlockedRun {
    let input_dir = tempfile::tempdir().unwrap();
    let fifo = input_dir.path().join("records.jsonl");
    mkfifo(&fifo);
    let (program, mut args) = match wrapper.split_first() {
        Some((program, rest)) => (*program, rest.to_vec()),
        None => (VS, vec![]),
    };
    if !wrapper.is_empty() {
        args.push(VS);
    }
    let out = dir.join("out.jsonl");
    let mut child = Command::new(program)
        .args(&args)
        .arg("-o")
        .arg(&out)
        .arg(&fifo)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Opening waits for vm-select to open its input, which it does after creating its output.
    let mut input = fs::OpenOptions::new().write(true).open(&fifo).unwrap();
    let temp = temporary_file_in(dir, "out.jsonl", &mut child);
    input.write_all(&fs::read(demo_records()).unwrap()).unwrap();
    input.flush().unwrap();
    // Mid-write: part of the output (more than vm-select's 64 KiB buffer) is in the file.
    let start = Instant::now();
    while fs::metadata(dir.join(&temp)).unwrap().len() == 0 {
        assert!(start.elapsed() < Duration::from_secs(30), "nothing written");
        std::thread::sleep(Duration::from_millis(10));
    }
    BlockedRun {
        child,
        _input_dir: input_dir,
        input,
        temp,
    }
}

/// SIGINT, SIGTERM and SIGHUP: exit 128 + the signal, no temporary file, the old output intact.
#[test]
fn a_signal_mid_run_removes_the_temporary_file_and_keeps_the_old_output() {
    for (signal, number, expected) in [("INT", 2, 130), ("TERM", 15, 143), ("HUP", 1, 129)] {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out.jsonl");
        fs::write(&out, "old\n").unwrap();
        let mut run = vm_select_blocked(dir.path(), &[]);
        kill(&run.child, signal);
        if ignored_here(number) {
            // Started with the signal ignored (a background job of a script): it stays ignored.
            assert_eq!(wait_for(&mut run.child, Duration::from_millis(500)), None);
            eprintln!("SIG{signal} is ignored here: checked that vm-select ignores it too");
            kill(&run.child, "TERM");
            continue;
        }
        let status = wait_for(&mut run.child, Duration::from_secs(30)).expect("it stops");
        drop(run.input);
        assert_eq!(status.code(), Some(expected), "SIG{signal}: {status}");
        assert_eq!(
            names(dir.path()),
            ["out.jsonl"],
            "SIG{signal}: {} left",
            run.temp
        );
        assert_eq!(fs::read_to_string(&out).unwrap(), "old\n", "SIG{signal}");
    }
}

/// Under nohup, SIGHUP stays ignored (catching it to clean up would turn it into an exit).
#[test]
fn under_nohup_a_hangup_is_ignored_and_a_later_sigterm_still_cleans_up() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.jsonl");
    fs::write(&out, "old\n").unwrap();
    let mut run = vm_select_blocked(dir.path(), &["nohup"]);
    kill(&run.child, "HUP");
    assert_eq!(
        wait_for(&mut run.child, Duration::from_millis(500)),
        None,
        "still running after SIGHUP"
    );
    kill(&run.child, "TERM");
    let status = wait_for(&mut run.child, Duration::from_secs(30)).expect("it stops");
    assert_eq!(status.code(), Some(143), "{status}");
    assert_eq!(names(dir.path()), ["out.jsonl"]);
    assert_eq!(fs::read_to_string(&out).unwrap(), "old\n");
}

/// SIGKILL cannot be caught: the temporary file stays, and the next run writing the same output
/// removes it (its writer's pid is gone).
#[test]
fn a_temporary_file_left_by_sigkill_is_swept_by_the_next_run() {
    let expected = expected();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.jsonl");
    fs::write(&out, "old\n").unwrap();
    let mut run = vm_select_blocked(dir.path(), &[]);
    kill(&run.child, "KILL");
    wait_for(&mut run.child, Duration::from_secs(30)).expect("killed");
    let debris = run.temp.clone();
    assert_eq!(names(dir.path()), sorted([debris.as_str(), "out.jsonl"]));
    // Another output's and a live process's temporary files are not touched.
    let other = ".other.jsonl.liftkit-999999-Ab12Cd.tmp".to_string();
    let live = format!(".out.jsonl.liftkit-{}-Ab12Cd.tmp", std::process::id());
    fs::write(dir.path().join(&other), "x").unwrap();
    fs::write(dir.path().join(&live), "x").unwrap();
    let result = vm_select_to(&out);
    assert_eq!(code(&result), 0, "{}", stderr(&result));
    assert!(fs::read(&out).unwrap() == expected);
    assert_eq!(
        names(dir.path()),
        sorted([other.as_str(), live.as_str(), "out.jsonl"]),
        "{debris} swept"
    );
}

fn sorted<const N: usize>(names: [&str; N]) -> Vec<String> {
    let mut names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
    names.sort();
    names
}

/// ovirt-dump (an async tool) stopped by SIGTERM, as `timeout` sends, mid-export from a slow
/// engine: exit 143, no temporary file, the last export intact.
#[test]
fn ovirt_dump_terminated_mid_export_leaves_no_temporary_file() {
    let sim = support::Sim::start(&["--tls", "--latency", "200ms"]);
    let dir = tempfile::tempdir().unwrap();
    let out: PathBuf = dir.path().join("inventory.jsonl");
    fs::write(&out, "last good export\n").unwrap();
    let mut cmd = Command::new(DUMP);
    cmd.args(["--url", &sim.url, "--user", &sim.user]);
    if let Some(ca) = &sim.ca_file {
        cmd.arg("--ca-file").arg(ca);
    }
    let mut child = cmd
        .arg("-o")
        .arg(&out)
        .env("OVIRT_PASSWORD", &sim.password)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let temp = temporary_file_in(dir.path(), "inventory.jsonl", &mut child);
    std::thread::sleep(Duration::from_millis(1000));
    assert_eq!(child.try_wait().unwrap(), None, "still exporting");
    kill(&child, "TERM");
    let status = wait_for(&mut child, Duration::from_secs(30)).expect("it stops");
    assert_eq!(status.code(), Some(143), "{status}");
    assert_eq!(names(dir.path()), ["inventory.jsonl"], "{temp} left");
    assert_eq!(fs::read_to_string(&out).unwrap(), "last good export\n");
}
