//! The JSON-lines reader and writer (`common::jsonl::Input`, `Writer`) against plain serde_json on
//! the same bytes, the practical ceiling. Run by `make bench`, which points it at VM records.
//!
//! Input: the file named by `LIFTKIT_BENCH_JSONL` (VM records, one per line), its first
//! `LIFTKIT_BENCH_BYTES` bytes (default 16 MiB) cut at a line end, held in memory so the disk is
//! not measured. Without `LIFTKIT_BENCH_JSONL` there is nothing to measure and the bench says so.

use common::jsonl::{Input, Writer};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use serde_json::Value;
use std::hint::black_box;
use std::io::{self, BufWriter, Write};
use std::time::Duration;

const DEFAULT_BYTES: usize = 16 << 20;

/// Whole lines of the records file, up to the byte budget; leaked so `Input` can own a `'static`
/// reader without a copy per iteration.
fn records() -> Option<&'static [u8]> {
    let path = std::env::var_os("LIFTKIT_BENCH_JSONL")?;
    let budget = std::env::var("LIFTKIT_BENCH_BYTES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(DEFAULT_BYTES);
    let mut bytes = std::fs::read(&path)
        .unwrap_or_else(|e| panic!("LIFTKIT_BENCH_JSONL={}: {e}", path.to_string_lossy()));
    if bytes.len() > budget {
        let end = bytes[..budget]
            .iter()
            .rposition(|b| *b == b'\n')
            .map_or(bytes.len(), |i| i + 1);
        bytes.truncate(end);
    }
    Some(Vec::leak(bytes))
}

fn benches(c: &mut Criterion) {
    let Some(data) = records() else {
        eprintln!("jsonl bench: set LIFTKIT_BENCH_JSONL to a VM-records file (make bench does)");
        return;
    };
    let values: Vec<Value> = serde_json::Deserializer::from_slice(data)
        .into_iter::<Value>()
        .collect::<Result<_, _>>()
        .expect("the records file is JSON lines");
    eprintln!(
        "jsonl bench: {} records, {} bytes",
        values.len(),
        data.len()
    );

    let mut read = c.benchmark_group("jsonl_read");
    read.throughput(Throughput::Bytes(data.len() as u64));
    read.bench_function("serde_json", |b| {
        b.iter(|| {
            let mut n = 0usize;
            for value in serde_json::Deserializer::from_slice(data).into_iter::<Value>() {
                black_box(value.unwrap());
                n += 1;
            }
            n
        })
    });
    read.bench_function("common_input", |b| {
        b.iter(|| {
            let mut input = Input::from_reader("bench", Box::new(data));
            let mut n = 0usize;
            while let Some(value) = input.next_value::<Value>() {
                black_box(value.unwrap());
                n += 1;
            }
            n
        })
    });
    read.finish();

    let mut write = c.benchmark_group("jsonl_write");
    write.throughput(Throughput::Bytes(data.len() as u64));
    write.bench_function("serde_json", |b| {
        b.iter(|| {
            let mut out = BufWriter::with_capacity(1 << 16, io::sink());
            for value in &values {
                serde_json::to_writer(&mut out, value).unwrap();
                out.write_all(b"\n").unwrap();
            }
            out.flush().unwrap();
        })
    });
    write.bench_function("common_writer", |b| {
        b.iter(|| {
            let mut writer = Writer::new("bench", io::sink());
            for value in &values {
                writer.write(value).unwrap();
            }
            writer.flush().unwrap();
        })
    });
    write.finish();
}

fn config() -> Criterion {
    // Each iteration handles megabytes: few samples are enough, and keep `make bench` short.
    Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5))
}

criterion_group! {
    name = jsonl;
    config = config();
    targets = benches
}
criterion_main!(jsonl);
