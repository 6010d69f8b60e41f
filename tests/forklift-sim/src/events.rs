//! core/v1 Events as client-go's recorder writes them for the controllers forklift-sim plays: one
//! Event per (object, type, reason, message), named `<object>.<hex nanoseconds>`, its count and
//! lastTimestamp bumped when the same thing happens again (client-go's EventCorrelator). As
//! client-go's broadcaster, writing happens in the background: recording never waits.

use crate::objects::{is_not_found, message};
use k8s_openapi::api::core::v1::Event;
use kube::Client;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use std::collections::HashMap;

/// The object an Event is about.
#[derive(Debug, Clone)]
pub struct Involved {
    pub api_version: String,
    pub kind: String,
    pub namespace: String,
    pub name: String,
    pub uid: String,
}

impl Involved {
    pub fn new(api_version: &str, kind: &str, namespace: &str, name: &str, uid: &str) -> Involved {
        Involved {
            api_version: api_version.to_string(),
            kind: kind.to_string(),
            namespace: namespace.to_string(),
            name: name.to_string(),
            uid: uid.to_string(),
        }
    }
}

pub const WARNING: &str = "Warning";
pub const NORMAL: &str = "Normal";

/// (namespace, object uid, type, reason, message)
type Key = (String, String, String, String, String);

/// Records Events under one component name, as one `record.EventRecorder` does.
pub struct Recorder {
    /// To the writer, which writes one after the other, in recording order.
    queue: tokio::sync::mpsc::UnboundedSender<(Key, Involved)>,
}

impl Recorder {
    pub fn new(client: Client, component: &str) -> Recorder {
        let (queue, mut rx) = tokio::sync::mpsc::unbounded_channel::<(Key, Involved)>();
        let mut writer = Writer {
            client,
            component: component.to_string(),
            seen: HashMap::new(),
        };
        tokio::spawn(async move {
            while let Some((key, involved)) = rx.recv().await {
                writer.write(key, &involved).await;
            }
        });
        Recorder { queue }
    }

    /// Records an Event; writing it is queued (a failure is logged, never fatal).
    pub async fn record(&self, involved: &Involved, kind: &str, reason: &str, text: &str) {
        let key = (
            involved.namespace.clone(),
            involved.uid.clone(),
            kind.to_string(),
            reason.to_string(),
            text.to_string(),
        );
        let _ = self.queue.send((key, involved.clone()));
    }
}

struct Writer {
    client: Client,
    component: String,
    /// Event name and count of what was recorded.
    seen: HashMap<Key, (String, i64)>,
}

impl Writer {
    async fn write(&mut self, key: Key, involved: &Involved) {
        let api: Api<Event> = Api::namespaced(self.client.clone(), &involved.namespace);
        let now = crate::conditions::now();
        let known = self.seen.get(&key).cloned();
        if let Some((name, count)) = known {
            let patch = json!({"count": count + 1, "lastTimestamp": now});
            match api
                .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
            {
                Ok(_) => {
                    self.seen.insert(key, (name, count + 1));
                    return;
                }
                Err(e) if is_not_found(&e) => {}
                Err(e) => {
                    tracing::warn!(
                        "event {}/{name}: cannot update: {}",
                        involved.namespace,
                        message(&e)
                    );
                    return;
                }
            }
        }
        let (_, _, kind, reason, text) = &key;
        let stamp = jiff::Timestamp::now().as_nanosecond();
        let name = format!("{}.{:x}", involved.name, stamp);
        let event: Value = json!({
            "apiVersion": "v1", "kind": "Event",
            "metadata": {"name": name, "namespace": involved.namespace},
            "involvedObject": {
                "apiVersion": involved.api_version, "kind": involved.kind,
                "namespace": involved.namespace, "name": involved.name, "uid": involved.uid,
            },
            "reason": reason, "message": text, "type": kind, "count": 1,
            "firstTimestamp": now, "lastTimestamp": now,
            "source": {"component": self.component},
            "reportingComponent": self.component, "reportingInstance": "",
        });
        let event: Event = match serde_json::from_value(event) {
            Ok(e) => e,
            Err(e) => {
                tracing::warn!("event {reason}: cannot build it: {e}");
                return;
            }
        };
        match api.create(&PostParams::default(), &event).await {
            Ok(_) => {
                self.seen.insert(key.clone(), (name, 1));
            }
            Err(e) => tracing::warn!(
                "event {reason} on {} {}/{}: cannot record: {}",
                involved.kind,
                involved.namespace,
                involved.name,
                message(&e)
            ),
        }
    }
}
