//! ovirt-sim: an oVirt engine REST API v4 on loopback, serving a world loaded from a file.
//!
//! `world` reads WORLD.md files, `index` indexes them, `objects` turns them into the engine's
//! objects, `tree` renders those as JSON or XML, `server` answers HTTP(S), `generate` makes worlds.

pub mod generate;
pub mod index;
pub mod objects;
pub mod roles;
pub mod server;
pub mod tls;
pub mod tree;
pub mod world;

use clap::Parser;
use common::{Error, ExitCode, Result};
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Parser)]
#[command(name = "ovirt-sim", version, about = "An oVirt engine simulator")]
pub struct Args {
    /// The world to serve (see tests/ovirt-sim/WORLD.md); default: the built-in demo lab
    #[arg(long, value_name = "FILE", conflicts_with = "generate")]
    pub world: Option<PathBuf>,
    /// Serve a generated world of N VMs instead
    #[arg(long, value_name = "N")]
    pub generate: Option<usize>,
    /// Seed for --generate and for fault injection
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Write the world (generated, or the demo) to FILE and exit
    #[arg(long, value_name = "FILE")]
    pub write_world: Option<PathBuf>,
    /// Address to listen on (port 0: any free port)
    #[arg(long, default_value = "127.0.0.1:0")]
    pub listen: SocketAddr,
    /// Serve https with a CA generated at start (its ca.pem goes to --cert-dir)
    #[arg(long)]
    pub tls: bool,
    /// Where to write ca.pem with --tls (default: a new directory under the temp dir)
    #[arg(long, value_name = "DIR")]
    pub cert_dir: Option<PathBuf>,
    /// Once listening, write to FILE (atomically) the `export OVIRT_URL=... OVIRT_USER=...
    /// OVIRT_PASSWORD=... OVIRT_CA=...` lines liftkit's tools read: `. FILE` in a shell
    #[arg(long, value_name = "FILE")]
    pub env_file: Option<PathBuf>,
    /// Lifetime of SSO tokens (e.g. 2s, 500ms, 30m); default: they never expire
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub token_ttl: Option<Duration>,
    /// Render 64-bit values (memory, sizes) as JSON numbers, like engines before 4.2.3
    #[arg(long)]
    pub legacy_numbers: bool,
    /// Delay added to every request (e.g. 20ms)
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub latency: Option<Duration>,
    /// Share of requests answered 500 or 503 with a fault (0 to 1)
    #[arg(long, default_value_t = 0.0, value_name = "RATE")]
    pub fail_rate: f64,
    /// Share of requests whose connection is closed without an answer
    #[arg(long, default_value_t = 0.0, value_name = "RATE")]
    pub drop_rate: f64,
    /// Share of requests delayed by --slow more
    #[arg(long, default_value_t = 0.0, value_name = "RATE")]
    pub slow_rate: f64,
    /// The delay of slow requests
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "2s")]
    pub slow: Duration,
    /// Added to the API summary's VM total, as if N VMs were created (negative: removed) during
    /// an export
    #[arg(
        long,
        default_value_t = 0,
        value_name = "N",
        allow_hyphen_values = true
    )]
    pub vm_total_skew: i64,
    /// Share of answers cut in half (invalid XML or JSON)
    #[arg(long, default_value_t = 0.0, value_name = "RATE")]
    pub malformed_rate: f64,
    /// Always cut answers whose path contains this text
    #[arg(long, value_name = "TEXT")]
    pub malformed_path: Option<String>,
    /// Always answer 500 to requests whose path contains this text
    #[arg(long, value_name = "TEXT")]
    pub fail_path: Option<String>,
    #[command(flatten)]
    pub verbosity: common::cli::Verbosity,
}

/// `20ms`, `2s`, `1.5s`, `5m`, or plain seconds.
pub fn parse_duration(s: &str) -> std::result::Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = match s.find(|c: char| !c.is_ascii_digit() && c != '.') {
        Some(i) => (&s[..i], &s[i..]),
        None => (s, "s"),
    };
    let n: f64 = num
        .parse()
        .map_err(|_| format!("bad duration {s:?} (e.g. 20ms, 2s, 5m)"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => return Err(format!("bad duration unit in {s:?} (ms, s, m, h)")),
    };
    Ok(Duration::from_secs_f64(secs))
}

fn rate(name: &str, v: f64) -> Result<f64> {
    if (0.0..=1.0).contains(&v) {
        Ok(v)
    } else {
        Err(Error::usage(format!(
            "--{name} {v}: want a rate from 0 to 1"
        )))
    }
}

/// `--env-file`: the variables liftkit's tools read, for a shell to source.
fn write_env_file(path: &std::path::Path, start: &serde_json::Value) -> Result<()> {
    let quote =
        |v: &serde_json::Value| format!("'{}'", v.as_str().unwrap_or("").replace('\'', "'\\''"));
    let mut text = format!(
        "# ovirt-sim, the engine simulator: `. {}` sets what liftkit's tools read\n",
        path.display()
    );
    for (var, key) in [
        ("OVIRT_URL", "url"),
        ("OVIRT_USER", "user"),
        ("OVIRT_PASSWORD", "password"),
        ("OVIRT_CA", "ca_file"),
    ] {
        if start[key].is_string() {
            text.push_str(&format!("export {var}={}\n", quote(&start[key])));
        }
    }
    let mut out = common::output::Output::create(Some(path))?;
    let name = out.name();
    out.write_all(text.as_bytes())
        .map_err(|e| common::error::write_error(&name, &e))?;
    out.commit()
}

/// The command-line definition (for the binary, its help and completions).
pub fn command() -> clap::Command {
    <Args as clap::CommandFactory>::command()
}

pub fn run(args: Args) -> Result<ExitCode> {
    args.verbosity.init_logging();
    let world = load_world(&args)?;
    if let Some(path) = &args.write_world {
        let text = generate::to_json(&world);
        std::fs::write(path, text).map_err(|e| Error::io(format!("{}: {e}", path.display())))?;
        return Ok(ExitCode::Ok);
    }
    let faults = faults(&args)?;
    let credential = world.engine.credentials[0].clone();
    let state = server::state(
        index::Index::new(world),
        server::Config {
            legacy_numbers: args.legacy_numbers,
            token_ttl: args.token_ttl,
            faults,
            seed: args.seed,
        },
    );
    install_quiet_drop_hook();

    let listener = std::net::TcpListener::bind(args.listen)
        .map_err(|e| Error::unavailable(format!("--listen {}: {e}", args.listen)))?;
    listener
        .set_nonblocking(true)
        .map_err(|e| Error::io(e.to_string()))?;
    let addr = listener
        .local_addr()
        .map_err(|e| Error::io(e.to_string()))?;
    let host = url_host(addr);
    let scheme = if args.tls { "https" } else { "http" };

    let tls = if args.tls {
        common::tls::install_crypto_provider();
        let dir = match &args.cert_dir {
            Some(d) => d.clone(),
            None => std::env::temp_dir().join(format!("ovirt-sim-{}", std::process::id())),
        };
        Some(tls::generate(&dir)?)
    } else {
        None
    };
    let start = serde_json::json!({
        "url": format!("{scheme}://{host}:{}/ovirt-engine/api", addr.port()),
        "user": credential.user,
        "password": credential.password,
        "ca_file": tls.as_ref().map(|t| t.ca_file.display().to_string()),
        "admin_url": format!("{scheme}://{host}:{}/sim", addr.port()),
    });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Error::io(format!("tokio: {e}")))?;
    // Caught from before the ready line: a SIGTERM sent as soon as it is read ends the run cleanly.
    let shutdown = {
        let _runtime = runtime.enter();
        shutdown_signal()?
    };

    let mut out = std::io::stdout().lock();
    writeln!(out, "{start}")
        .and_then(|_| out.flush())
        .map_err(|e| common::error::write_error("stdout", &e))?;
    drop(out);
    if let Some(path) = &args.env_file {
        write_env_file(path, &start)?;
    }

    runtime.block_on(async move {
        let app = server::router(state);
        let serve = async move {
            match tls {
                Some(t) => {
                    let config = axum_server::tls_rustls::RustlsConfig::from_pem(
                        t.cert_pem.into_bytes(),
                        t.key_pem.into_bytes(),
                    )
                    .await
                    .map_err(|e| Error::config(format!("TLS: {e}")))?;
                    axum_server::from_tcp_rustls(listener, config)
                        .map_err(|e| Error::io(e.to_string()))?
                        .serve(app.into_make_service())
                        .await
                        .map_err(|e| Error::io(e.to_string()))
                }
                None => {
                    let listener = tokio::net::TcpListener::from_std(listener)
                        .map_err(|e| Error::io(e.to_string()))?;
                    axum::serve(listener, app)
                        .await
                        .map_err(|e| Error::io(e.to_string()))
                }
            }
        };
        tokio::select! {
            r = serve => r.map(|_| ExitCode::Ok),
            _ = shutdown => Ok(ExitCode::Ok),
        }
    })
}

/// The world to serve: `--world`'s file, a generated one, or the demo lab.
fn load_world(args: &Args) -> Result<world::World> {
    Ok(match (&args.world, args.generate) {
        (Some(path), _) => world::World::load(path)?,
        (None, Some(n)) => {
            if !(1..=1_000_000).contains(&n) {
                return Err(Error::usage(format!(
                    "--generate {n}: want 1 to 1000000 VMs"
                )));
            }
            generate::generate(n, args.seed)
        }
        (None, None) => generate::demo(),
    })
}

/// The faults and latency the flags ask for.
fn faults(args: &Args) -> Result<server::Faults> {
    Ok(server::Faults {
        latency_ms: args.latency.map(|d| d.as_millis() as u64).unwrap_or(0),
        fail_rate: rate("fail-rate", args.fail_rate)?,
        drop_rate: rate("drop-rate", args.drop_rate)?,
        slow_rate: rate("slow-rate", args.slow_rate)?,
        slow_ms: args.slow.as_millis() as u64,
        malformed_rate: rate("malformed-rate", args.malformed_rate)?,
        malformed_path: args.malformed_path.clone(),
        fail_path: args.fail_path.clone(),
        vm_total_skew: args.vm_total_skew,
    })
}

/// The host part of the URLs the ready line gives: loopback for an unspecified address,
/// brackets around IPv6.
fn url_host(addr: std::net::SocketAddr) -> String {
    let host = if addr.ip().is_unspecified() {
        "127.0.0.1".to_string()
    } else {
        addr.ip().to_string()
    };
    if addr.is_ipv6() {
        format!("[{host}]")
    } else {
        host
    }
}

/// SIGTERM or SIGINT, registered now (inside the runtime), awaited later.
fn shutdown_signal() -> Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let register = |kind: SignalKind| {
        signal(kind).map_err(|e| Error::new(ExitCode::Software, format!("signal handler: {e}")))
    };
    let mut term = register(SignalKind::terminate())?;
    let mut interrupt = register(SignalKind::interrupt())?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = interrupt.recv() => {}
        }
    })
}

/// Injected connection drops unwind a connection task; keep those panics off stderr.
fn install_quiet_drop_hook() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if info.payload().downcast_ref::<&str>() == Some(&server::DROP_MARK) {
            return;
        }
        previous(info);
    }));
}
