//! The event stream on stdout: one JSON object a line, `{"time", "event", "plan", "namespace",
//! ...}`, flushed as it happens so a script watching the run sees it at once; and the reader of
//! that stream for the tools that follow plan-run (report, owner-notice).

use crate::sched::PlanKey;
use common::jsonl::Input;
use common::{Error, Result};
use serde_json::{Map, Value};
use std::path::PathBuf;

pub struct Events {
    writer: common::jsonl::Writer<std::io::Stdout>,
    /// Flush after every event (live runs); a simulation flushes once at the end.
    flush_each: bool,
    pub log: Vec<Value>,
    keep: bool,
    discard: bool,
}

impl Events {
    pub fn stdout(flush_each: bool) -> Self {
        Events {
            writer: common::jsonl::Writer::stdout(),
            flush_each,
            log: Vec::new(),
            keep: false,
            discard: false,
        }
    }

    /// Events kept in memory only (tests, and --simulate --format table).
    pub fn sink() -> Self {
        Events {
            writer: common::jsonl::Writer::stdout(),
            flush_each: false,
            log: Vec::new(),
            keep: true,
            discard: false,
        }
        .discard()
    }

    fn discard(mut self) -> Self {
        self.discard = true;
        self
    }

    /// Keep a copy of every event (for the summary of a simulation).
    pub fn keep(mut self) -> Self {
        self.keep = true;
        self
    }

    /// Writes one event at `time`; `fields` is a JSON object of the event's own fields.
    pub fn emit(
        &mut self,
        time: jiff::Timestamp,
        event: &str,
        plan: Option<&PlanKey>,
        fields: Value,
    ) -> Result<()> {
        let mut line = Map::new();
        line.insert("time".into(), Value::from(format_time(time)));
        line.insert("event".into(), Value::from(event));
        if let Some(plan) = plan {
            line.insert("plan".into(), Value::from(plan.name.clone()));
            line.insert("namespace".into(), Value::from(plan.namespace.clone()));
        }
        if let Value::Object(fields) = fields {
            line.extend(fields);
        }
        let line = Value::Object(line);
        if !self.discard {
            self.writer.write(&line)?;
        }
        if self.flush_each && !self.discard {
            self.writer.flush()?;
        }
        if self.keep {
            self.log.push(line);
        }
        Ok(())
    }

    pub fn flush(&mut self) -> Result<()> {
        self.writer.flush()
    }
}

/// RFC 3339 in UTC, whole seconds.
pub fn format_time(time: jiff::Timestamp) -> String {
    jiff::Timestamp::from_second(time.as_second())
        .unwrap_or(time)
        .to_string()
}

/// A plan-run event: `{time, event, plan, namespace, ...}`.
#[derive(Debug, Clone)]
pub struct Event {
    pub time: jiff::Timestamp,
    pub event: String,
    pub fields: serde_json::Map<String, Value>,
}

impl Event {
    pub fn str(&self, key: &str) -> Option<&str> {
        self.fields.get(key).and_then(Value::as_str)
    }
    pub fn u64(&self, key: &str) -> Option<u64> {
        self.fields.get(key).and_then(Value::as_u64)
    }
}

/// plan-run's events, in the order read (plan-run writes them in time order).
pub fn read_events(paths: &[PathBuf]) -> Result<Vec<Event>> {
    let mut events = Vec::new();
    for path in paths {
        let mut input = Input::open(path)?;
        while let Some(value) = input.next_value::<Value>() {
            let value = value?;
            let here = input.location();
            events.push(event(value).map_err(|why| Error::data(format!("{here}: {why}")))?);
        }
    }
    Ok(events)
}

fn event(value: Value) -> std::result::Result<Event, String> {
    let Value::Object(fields) = value else {
        return Err("not a plan-run event (expected a JSON object)".into());
    };
    let event = fields.get("event").and_then(Value::as_str);
    let time = fields.get("time").and_then(Value::as_str);
    let (Some(event), Some(time)) = (event, time) else {
        return Err("not a plan-run event (expected \"time\" and \"event\")".into());
    };
    let time: jiff::Timestamp = time
        .parse()
        .map_err(|e| format!("time {time:?} is not an RFC 3339 time: {e}"))?;
    Ok(Event {
        time,
        event: event.to_string(),
        fields,
    })
}
