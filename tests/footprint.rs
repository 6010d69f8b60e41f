//! Forklift's footprint in the owners' namespaces (issue 11), on the real test bed: a kube-apiserver
//! with kube-controller-manager (quota, GC, PV binding), forklift-sim creating what Forklift v2.12.5
//! creates there, and liftkit's own quotas and LimitRanges in the way.

#[path = "kubebed/mod.rs"]
mod kubebed;

use k8s_openapi::api::core::v1::{ConfigMap, PersistentVolumeClaim, Pod, ResourceQuota};
use kube::Api;
use kube::api::PostParams;
use serde_json::json;
use std::time::{Duration, Instant};

/// Waits up to `secs` for `check` to give Some.
async fn eventually<T, F, Fut>(secs: u64, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(Instant::now() < deadline, "{what}: not within {secs} s");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn pvc(name: &str, size: &str) -> PersistentVolumeClaim {
    serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": name},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": size}}}
    }))
    .unwrap()
}

/// The refusal's message, or a panic naming what was unexpectedly accepted.
fn refused<T: std::fmt::Debug>(result: Result<T, kube::Error>, what: &str) -> String {
    match result {
        Err(kube::Error::Api(status)) => {
            assert_eq!(status.code, 403, "{what}: {status:?}");
            status.message
        }
        other => panic!("{what}: expected a 403 refusal, got {other:?}"),
    }
}

/// Before the controller manager, the test bed accepted two 112Gi PVCs under a 179Gi quota and a
/// pod without requests under a requests.cpu quota (issue 11). A real cluster refuses both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_test_bed_enforces_quotas_as_a_cluster_does() {
    let bed = kubebed::Testbed::shared();
    let ns = bed.namespace("quota").await;
    let client = bed.client().await;
    let quotas: Api<ResourceQuota> = Api::namespaced(client.clone(), &ns);
    let quota: ResourceQuota = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": "liftkit"},
        "spec": {"hard": {"requests.storage": "179Gi", "requests.cpu": "20"}}
    }))
    .unwrap();
    quotas.create(&PostParams::default(), &quota).await.unwrap();
    // The quota controller fills status.hard and status.used; admission enforces from then on.
    eventually(30, "quota status", || async {
        let q = quotas.get("liftkit").await.ok()?;
        let status = q.status?;
        (status.hard?.len() == 2 && status.used.is_some()).then_some(())
    })
    .await;

    let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), &ns);
    pvcs.create(&PostParams::default(), &pvc("first", "112Gi"))
        .await
        .expect("the first 112Gi PVC fits in 179Gi");
    let message = refused(
        pvcs.create(&PostParams::default(), &pvc("second", "112Gi"))
            .await,
        "a second 112Gi PVC",
    );
    assert!(
        message.contains("exceeded quota: liftkit") && message.contains("requests.storage"),
        "{message}"
    );

    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    let pod: Pod = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "no-requests"},
        "spec": {"containers": [{"name": "c", "image": "example.com/populator:1"}]}
    }))
    .unwrap();
    let message = refused(
        pods.create(&PostParams::default(), &pod).await,
        "a pod without requests",
    );
    assert!(
        message.contains("failed quota: liftkit") && message.contains("requests.cpu"),
        "{message}"
    );

    // Usage is real: deleting the first PVC frees its 112Gi (once its protection finalizer is
    // removed by the PVC protection controller) and the second fits.
    pvcs.delete("first", &Default::default()).await.unwrap();
    eventually(60, "the second PVC after the first is gone", || async {
        pvcs.create(&PostParams::default(), &pvc("second", "112Gi"))
            .await
            .ok()
    })
    .await;
}

/// The garbage collector runs: an object owned by a deleted one goes too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_test_bed_collects_owned_objects() {
    let bed = kubebed::Testbed::shared();
    let ns = bed.namespace("gc").await;
    let maps: Api<ConfigMap> = Api::namespaced(bed.client().await, &ns);
    let owner: ConfigMap = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "owner"}
    }))
    .unwrap();
    let owner = maps.create(&PostParams::default(), &owner).await.unwrap();
    let owned: ConfigMap = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "owned", "ownerReferences": [{"apiVersion": "v1", "kind": "ConfigMap",
            "name": "owner", "uid": owner.metadata.uid.unwrap()}]}
    }))
    .unwrap();
    maps.create(&PostParams::default(), &owned).await.unwrap();
    maps.delete("owner", &Default::default()).await.unwrap();
    eventually(60, "the owned ConfigMap collected", || async {
        match maps.get_opt("owned").await {
            Ok(None) => Some(()),
            _ => None,
        }
    })
    .await;
}
