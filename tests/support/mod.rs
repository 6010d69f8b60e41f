//! Shared helpers for every integration test: start the engine simulator, talk to its admin
//! endpoint, read world files, run a tool binary and capture what it did.
//!
//! ```ignore
//! mod support;
//! let sim = support::Sim::start(&[]);                 // demo world, plain http
//! let sim = support::Sim::start(&["--tls"]);          // https; sim.ca_file is Some(ca.pem)
//! let sim = support::Sim::start(&["--generate", "500", "--seed", "3"]);
//! let out = support::run(env!("CARGO_BIN_EXE_ovirt-dump"), &["--url", &sim.url], &[("OVIRT_PASSWORD", &sim.password)], None);
//! assert_eq!(out.code, 0, "{}", out.stderr);
//! assert_eq!(sim.requests()["by_path"]["/ovirt-engine/api/vms"], 1);
//! ```
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// The simulator binary.
pub const OVIRT_SIM: &str = env!("CARGO_BIN_EXE_ovirt-sim");

/// A running ovirt-sim, killed when dropped. The fields are its start line.
pub struct Sim {
    /// `http(s)://127.0.0.1:PORT/ovirt-engine/api`
    pub url: String,
    pub user: String,
    pub password: String,
    /// The CA to trust with `--tls` (None on plain http).
    pub ca_file: Option<PathBuf>,
    /// `http(s)://127.0.0.1:PORT/sim`
    pub admin_url: String,
    child: Child,
    _cert_dir: Option<tempfile::TempDir>,
}

impl Sim {
    /// Starts ovirt-sim with `extra_args`; without `--world` or `--generate` it serves
    /// tests/worlds/demo.json. With `--tls` and no `--cert-dir`, ca.pem goes to a temp dir that
    /// lives as long as the Sim. Panics if it does not start within 30 s.
    pub fn start(extra_args: &[&str]) -> Sim {
        let mut args: Vec<String> = extra_args.iter().map(|s| s.to_string()).collect();
        if !args.iter().any(|a| a == "--world" || a == "--generate") {
            args.push("--world".into());
            args.push(demo_world_path().display().to_string());
        }
        let mut cert_dir = None;
        if args.iter().any(|a| a == "--tls") && !args.iter().any(|a| a == "--cert-dir") {
            let dir = tempfile::tempdir().expect("temp dir");
            args.push("--cert-dir".into());
            args.push(dir.path().display().to_string());
            cert_dir = Some(dir);
        }
        let mut child = Command::new(OVIRT_SIM)
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start ovirt-sim");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(l) if !l.trim().is_empty() => l,
            _ => {
                let _ = child.kill();
                panic!("ovirt-sim {args:?} printed no start line");
            }
        };
        let v: serde_json::Value = serde_json::from_str(&line).expect("start line is JSON");
        let s = |k: &str| v[k].as_str().unwrap_or_default().to_string();
        Sim {
            url: s("url"),
            user: s("user"),
            password: s("password"),
            ca_file: v["ca_file"].as_str().map(PathBuf::from),
            admin_url: s("admin_url"),
            child,
            _cert_dir: cert_dir,
        }
    }

    /// `scheme://127.0.0.1:PORT`
    pub fn origin(&self) -> String {
        self.url.trim_end_matches("/ovirt-engine/api").to_string()
    }

    /// A reqwest client that trusts the simulator's CA (when it has one).
    pub fn client(&self) -> reqwest::Client {
        client_for(self.ca_file.as_deref())
    }

    /// GET /sim/requests: {"total": N, "by_path": {"/ovirt-engine/api/vms": n, ...}}
    pub fn requests(&self) -> serde_json::Value {
        let body = self.admin("GET", "/requests", None);
        serde_json::from_str(&body).expect("requests JSON")
    }

    /// Zeroes the request counters.
    pub fn reset(&self) {
        self.admin("POST", "/reset", None);
    }

    /// Replaces the faults, e.g. `json!({"fail_rate": 1.0})`; `json!({})` clears them. Fields:
    /// latency_ms, fail_rate, drop_rate, slow_rate, slow_ms, malformed_rate, malformed_path, fail_path.
    pub fn set_faults(&self, faults: serde_json::Value) {
        self.admin("POST", "/faults", Some(faults.to_string()));
    }

    fn admin(&self, method: &str, path: &str, body: Option<String>) -> String {
        let url = format!("{}{path}", self.admin_url);
        let client = self.client();
        let post = method == "POST";
        block_on(async move {
            let req = if post {
                client.post(&url)
            } else {
                client.get(&url)
            };
            let req = match body {
                Some(b) => req.header("content-type", "application/json").body(b),
                None => req,
            };
            let resp = req.send().await.unwrap_or_else(|e| panic!("{url}: {e}"));
            assert!(resp.status().is_success(), "{url}: {}", resp.status());
            resp.text().await.expect("admin body")
        })
    }

    /// The process id (to send it signals).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A reqwest client trusting `ca_file` only (or the usual roots when None).
pub fn client_for(ca_file: Option<&Path>) -> reqwest::Client {
    common::tls::install_crypto_provider();
    let mut builder = reqwest::Client::builder().timeout(Duration::from_secs(30));
    if let Some(ca) = ca_file {
        let pem = std::fs::read(ca).expect("read CA");
        let cert = reqwest::Certificate::from_pem(&pem).expect("CA PEM");
        builder = builder.tls_certs_only([cert]);
    }
    builder.build().expect("reqwest client")
}

/// Runs a future to completion on its own thread and runtime, so it works from plain #[test]s
/// and from inside #[tokio::test]s alike.
pub fn block_on<F>(f: F) -> F::Output
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
            .block_on(f)
    })
    .join()
    .expect("helper thread")
}

/// The repository root (where Cargo.toml of the workspace is).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// tests/worlds/demo.json
pub fn demo_world_path() -> PathBuf {
    repo_root().join("tests/worlds/demo.json")
}

/// A world file as plain JSON, to compute expectations without the simulator's code.
pub fn load_world(path: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// What a finished process did.
#[derive(Debug)]
pub struct Output {
    pub stdout: String,
    pub stderr: String,
    /// The exit code (-1 if killed by a signal).
    pub code: i32,
}

/// Runs `bin` with `args`, extra environment `env` and optional `stdin`, and waits for it.
pub fn run(bin: &str, args: &[&str], env: &[(&str, &str)], stdin: Option<&str>) -> Output {
    let mut child = Command::new(bin)
        .args(args)
        .envs(env.iter().copied())
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{bin}: {e}"));
    if let Some(input) = stdin {
        let mut pipe = child.stdin.take().expect("stdin");
        let input = input.to_string();
        // A writer thread, so a tool that answers before reading everything cannot deadlock us.
        std::thread::spawn(move || {
            let _ = pipe.write_all(input.as_bytes());
        });
    }
    let mut stdout = String::new();
    let mut stderr = String::new();
    let mut out_pipe = child.stdout.take().expect("stdout");
    let mut err_pipe = child.stderr.take().expect("stderr");
    let err_thread = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err_pipe.read_to_string(&mut s);
        s
    });
    let _ = out_pipe.read_to_string(&mut stdout);
    stderr.push_str(&err_thread.join().unwrap_or_default());
    let status = child.wait().expect("wait");
    Output {
        stdout,
        stderr,
        code: status.code().unwrap_or(-1),
    }
}

/// Removes `dir` once this test process has exited, however it ends (all tests done, a panic,
/// SIGKILL): for directories held in statics, which are never dropped. A detached `sh` (its own
/// session, so Ctrl-C on the test run does not stop it) reads a pipe whose only writer is this
/// process; at end of file it runs `stop` (a script taking `dir`, like the test bed's stop.sh)
/// when given, then removes `dir`. LIFTKIT_KEEP_TEST_DIRS=1 keeps the directories, for a look.
pub fn remove_at_exit(dir: &Path, stop: Option<&Path>) {
    use std::sync::Mutex;
    /// The cleaners, each holding the writing end of its pipe (its stdin) open until exit.
    static CLEANERS: Mutex<Vec<Child>> = Mutex::new(Vec::new());
    if std::env::var_os("LIFTKIT_KEEP_TEST_DIRS").is_some() {
        return;
    }
    let script = r#"cat >/dev/null; [ -z "$2" ] || "$2" "$1"; rm -rf -- "$1""#;
    // std creates the pipe close-on-exec: no other child inherits the writing end, so it closes
    // exactly when this process exits.
    let cleaner = Command::new("setsid")
        .args(["sh", "-c", script, "remove-at-exit"])
        .arg(dir)
        .arg(stop.map(Path::as_os_str).unwrap_or_default())
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start setsid sh (util-linux)");
    CLEANERS.lock().unwrap().push(cleaner);
}
