//! One plan-run per set of plans: a coordination.k8s.io/v1 Lease in the plans' namespace, named
//! after the plan set, taken before anything is applied, renewed every third of its duration and
//! released at exit. A holder that dies loses it once its duration has passed without renewal.
//! Written here rather than taken from a crate: kube-runtime has no leader election, and the
//! protocol is client-go's leaderelection in a hundred lines (an update with the resourceVersion
//! read is the compare-and-swap; the holder's clock against ours decides expiry, as Lease readers
//! such as the kubelet's node lease controller do).

use crate::kubeerr;
use crate::manifest::Plan;
use common::{Error, ExitCode, Result};
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::api::{Api, PostParams};
use std::time::{Duration, Instant};

/// The Lease of a set of plans: in the first of the plans' namespaces, named after all of them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseName {
    pub namespace: String,
    pub name: String,
}

impl LeaseName {
    /// `liftkit-plan-run-<hash of the sorted namespace/name of every plan>`; None without plans.
    pub fn of(plans: &[Plan]) -> Option<LeaseName> {
        let mut keys: Vec<String> = plans.iter().map(|p| p.key.to_string()).collect();
        keys.sort();
        let namespace = plans.iter().map(|p| p.key.namespace.clone()).min()?;
        Some(LeaseName {
            namespace,
            name: format!("liftkit-plan-run-{}", common::names::stable_hash(&keys)),
        })
    }
}

impl std::fmt::Display for LeaseName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Lease {}/{}", self.namespace, self.name)
    }
}

pub struct Settings {
    pub duration: Duration,
    /// Wait for a lease another plan-run holds instead of exiting.
    pub wait: bool,
}

/// This process, as the Lease names its holder: `<host name>/<pid>` (in a Job: the pod's name).
pub fn identity() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown-host".into());
    format!("{host}/{}", std::process::id())
}

/// A Lease this process holds; renewed in the background until [`Held::release`].
pub struct Held {
    api: Api<Lease>,
    name: LeaseName,
    identity: String,
    lost: tokio::sync::watch::Receiver<Option<String>>,
    renewer: tokio::task::JoinHandle<()>,
}

enum Attempt {
    Acquired,
    /// Held by someone else: who, and in how long it runs out unless renewed.
    Held {
        holder: String,
        expires_in: Duration,
    },
    /// Someone else changed it between our read and our write: read again.
    Raced,
}

fn now() -> MicroTime {
    MicroTime(jiff::Timestamp::now())
}

/// How long until `lease` runs out unless renewed (zero: it has, or nobody holds it).
fn remaining(lease: &Lease) -> Duration {
    let Some(spec) = &lease.spec else {
        return Duration::ZERO;
    };
    if spec
        .holder_identity
        .as_deref()
        .unwrap_or_default()
        .is_empty()
    {
        return Duration::ZERO;
    }
    let (Some(renewed), Some(secs)) = (&spec.renew_time, spec.lease_duration_seconds) else {
        return Duration::ZERO;
    };
    let ends = renewed.0 + jiff::SignedDuration::from_secs(i64::from(secs));
    let left = ends.duration_since(jiff::Timestamp::now());
    Duration::try_from(left).unwrap_or(Duration::ZERO)
}

fn my_spec(identity: &str, settings: &Settings, transitions: i32) -> LeaseSpec {
    LeaseSpec {
        holder_identity: Some(identity.to_string()),
        lease_duration_seconds: Some(settings.duration.as_secs().clamp(1, i32::MAX as u64) as i32),
        acquire_time: Some(now()),
        renew_time: Some(now()),
        lease_transitions: Some(transitions),
        ..LeaseSpec::default()
    }
}

async fn try_acquire(
    api: &Api<Lease>,
    name: &LeaseName,
    identity: &str,
    settings: &Settings,
) -> std::result::Result<Attempt, kube::Error> {
    let Some(mut lease) = api.get_opt(&name.name).await? else {
        let lease = Lease {
            metadata: kube::api::ObjectMeta {
                name: Some(name.name.clone()),
                namespace: Some(name.namespace.clone()),
                labels: Some(
                    [(
                        common::k8s::MANAGED_BY_LABEL.to_string(),
                        common::k8s::MANAGED_BY.to_string(),
                    )]
                    .into(),
                ),
                ..Default::default()
            },
            spec: Some(my_spec(identity, settings, 0)),
        };
        return match api.create(&PostParams::default(), &lease).await {
            Ok(_) => Ok(Attempt::Acquired),
            Err(kube::Error::Api(s)) if s.code == 409 => Ok(Attempt::Raced),
            Err(e) => Err(e),
        };
    };
    let spec = lease.spec.clone().unwrap_or_default();
    let holder = spec.holder_identity.clone().unwrap_or_default();
    let left = remaining(&lease);
    if !holder.is_empty() && holder != identity && !left.is_zero() {
        return Ok(Attempt::Held {
            holder,
            expires_in: left,
        });
    }
    // Counted as client-go's leaderelection counts them: every acquisition by another identity.
    let transitions = spec.lease_transitions.unwrap_or(0) + i32::from(holder != identity);
    lease.spec = Some(my_spec(identity, settings, transitions));
    // The resourceVersion read makes this a compare-and-swap: two takers, one wins, one gets 409.
    match api
        .replace(&name.name, &PostParams::default(), &lease)
        .await
    {
        Ok(_) => Ok(Attempt::Acquired),
        Err(kube::Error::Api(s)) if s.code == 409 => Ok(Attempt::Raced),
        Err(e) => Err(e),
    }
}

/// Takes the Lease, waiting for it with `settings.wait`, else failing with a message naming the
/// holder (exit 69). SIGINT or SIGTERM while waiting ends the wait (exit 130 or 143).
pub async fn acquire(client: &kube::Client, name: &LeaseName, settings: Settings) -> Result<Held> {
    let api: Api<Lease> = Api::namespaced(client.clone(), &name.namespace);
    let identity = identity();
    let fail = |e: &kube::Error| kubeerr::error(&name.to_string(), e);
    let mut signals = crate::signals::Interrupt::register()
        .map_err(|e| Error::new(ExitCode::Software, format!("cannot catch signals: {e}")))?;
    let mut waiting_for: Option<String> = None;
    loop {
        match try_acquire(&api, name, &identity, &settings)
            .await
            .map_err(|e| fail(&e))?
        {
            Attempt::Acquired => break,
            Attempt::Raced => continue,
            Attempt::Held { holder, expires_in } => {
                let holder = common::untrusted::for_terminal(&holder).into_owned();
                if !settings.wait {
                    return Err(Error::new(
                        ExitCode::Unavailable,
                        format!(
                            "{name}: held by {holder} (runs out in {} unless renewed): another plan-run drives these plans; --wait-for-lease waits for it",
                            crate::human_secs(expires_in.as_secs_f64())
                        ),
                    ));
                }
                if waiting_for.as_deref() != Some(holder.as_str()) {
                    eprintln!(
                        "plan-run: {name}: held by {holder}; waiting for it (--wait-for-lease)"
                    );
                    waiting_for = Some(holder);
                }
                // Look again when it runs out, or sooner (every 2 s at most, client-go's retry
                // period): the holder may give it up at its exit.
                let wait = expires_in
                    .min(settings.duration / 3)
                    .min(Duration::from_secs(2))
                    .max(Duration::from_millis(200));
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    signal = signals.recv() => {
                        return Err(Error::new(signal.exit_code(), format!("{name}: {} while waiting for it", signal.word())));
                    }
                }
            }
        }
    }
    tracing::info!("{name}: taken as {identity}");
    let (tx, lost) = tokio::sync::watch::channel(None);
    let renewer = tokio::spawn(renew(
        api.clone(),
        name.name.clone(),
        identity.clone(),
        settings.duration,
        tx,
    ));
    Ok(Held {
        api,
        name: name.clone(),
        identity,
        lost,
        renewer,
    })
}

/// Renews every third of the duration; reports the Lease lost when another holder took it, or
/// when it could not be renewed for a whole duration (it may have been taken by then).
async fn renew(
    api: Api<Lease>,
    name: String,
    identity: String,
    duration: Duration,
    lost: tokio::sync::watch::Sender<Option<String>>,
) {
    let mut renewed = Instant::now();
    loop {
        tokio::time::sleep(duration / 3).await;
        let attempt = async {
            let mut lease = api.get(&name).await?;
            let holder = lease
                .spec
                .as_ref()
                .and_then(|s| s.holder_identity.clone())
                .unwrap_or_default();
            if holder != identity {
                return Ok(Some(holder));
            }
            if let Some(spec) = lease.spec.as_mut() {
                spec.renew_time = Some(now());
            }
            api.replace(&name, &PostParams::default(), &lease)
                .await
                .map(|_| None)
        };
        match attempt.await {
            Ok(None) => renewed = Instant::now(),
            Ok(Some(holder)) => {
                let holder = common::untrusted::for_terminal(&holder).into_owned();
                let _ = lost.send(Some(format!(
                    "taken over by {}",
                    if holder.is_empty() { "nobody" } else { &holder }
                )));
                return;
            }
            Err(e) if renewed.elapsed() >= duration => {
                let _ = lost.send(Some(format!(
                    "not renewed for {}: {}",
                    crate::human_secs(duration.as_secs_f64()),
                    kubeerr::describe(&e)
                )));
                return;
            }
            Err(e) => tracing::info!(
                "renewing the lease {name}: {} (retrying)",
                kubeerr::describe(&e)
            ),
        }
    }
}

impl Held {
    /// Resolves when the Lease is lost, with why.
    pub async fn lost(&mut self) -> String {
        loop {
            if let Some(why) = self.lost.borrow_and_update().clone() {
                return why;
            }
            if self.lost.changed().await.is_err() {
                // The renewer ended without a word: it cannot have, but never claim a loss.
                std::future::pending::<()>().await;
            }
        }
    }

    /// Gives the Lease up, so the next plan-run need not wait for it to run out. A failure only
    /// means the next one waits: said, not fatal.
    pub async fn release(self) {
        self.renewer.abort();
        let result = async {
            let mut lease = self.api.get(&self.name.name).await?;
            let mine = lease
                .spec
                .as_ref()
                .and_then(|s| s.holder_identity.as_deref())
                == Some(self.identity.as_str());
            if !mine {
                return Ok(());
            }
            if let Some(spec) = lease.spec.as_mut() {
                spec.holder_identity = None;
                spec.renew_time = Some(now());
            }
            self.api
                .replace(&self.name.name, &PostParams::default(), &lease)
                .await
                .map(|_| ())
        };
        if let Err(e) = result.await {
            eprintln!(
                "plan-run: warning: {}: cannot release it ({}); the next plan-run waits until it runs out",
                self.name,
                kubeerr::describe(&e)
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sched::PlanKey;

    fn plan(namespace: &str, name: &str) -> Plan {
        Plan {
            key: PlanKey {
                namespace: namespace.into(),
                name: name.into(),
            },
            bytes: 0,
            bytes_known: false,
            vms: Vec::new(),
            disks: 0,
            target_namespace: None,
            warm: false,
            location: "test".into(),
        }
    }

    #[test]
    fn one_plan_set_one_lease_name_in_any_order() {
        let a = LeaseName::of(&[plan("mtv", "p1"), plan("mtv", "p2")]).unwrap();
        let b = LeaseName::of(&[plan("mtv", "p2"), plan("mtv", "p1")]).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.namespace, "mtv");
        let hash = a.name.strip_prefix("liftkit-plan-run-").unwrap();
        assert_eq!(hash.len(), 10);
        assert!(hash.bytes().all(|c| c.is_ascii_hexdigit()));
        // Another set, another Lease; several namespaces: the first of them.
        let c = LeaseName::of(&[plan("mtv", "p1")]).unwrap();
        assert_ne!(a.name, c.name);
        let d = LeaseName::of(&[plan("zz", "p"), plan("aa", "q")]).unwrap();
        assert_eq!(d.namespace, "aa");
        assert_eq!(LeaseName::of(&[]), None);
    }

    #[test]
    fn a_lease_nobody_holds_or_not_renewed_in_time_has_run_out() {
        let held = |holder: Option<&str>, renewed_secs_ago: i64, duration: i32| Lease {
            metadata: Default::default(),
            spec: Some(LeaseSpec {
                holder_identity: holder.map(str::to_string),
                lease_duration_seconds: Some(duration),
                renew_time: Some(MicroTime(
                    jiff::Timestamp::now() - jiff::SignedDuration::from_secs(renewed_secs_ago),
                )),
                ..Default::default()
            }),
        };
        assert!(remaining(&held(None, 0, 30)).is_zero());
        assert!(remaining(&held(Some("h/1"), 31, 30)).is_zero());
        // Renewed 10 s ago for 30 s: 20 s left, less the time this test takes between its two
        // readings of the clock (5 s allowed: a loaded machine can stall a thread that long).
        let left = remaining(&held(Some("h/1"), 10, 30));
        assert!(
            left > Duration::from_secs(15) && left <= Duration::from_secs(20),
            "{left:?}"
        );
    }
}
