//! Decoding JSON lines on every core: one thread reads the inputs in batches of whole lines,
//! workers decode the batches, and the caller's thread consumes the results in input order. What a
//! tool computes is therefore the same as reading line by line, errors included (the first bad line
//! in input order is the one reported), only faster on a multi-core machine.
//!
//! Memory is bounded: at most `IN_FLIGHT` batches (of about `BATCH_BYTES` each) exist at once,
//! whatever the input's size.

use crate::error::{Error, Result};
use crate::jsonl::Location;
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, sync_channel};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const BATCH_BYTES: usize = 1 << 20;
/// One read's size: a pipe's buffer.
const READ_BYTES: usize = 1 << 16;
/// The longest line read: far beyond any record (a VM record is a few KiB), short of exhausting
/// memory on an input that is not JSON lines at all.
#[cfg(not(test))]
const MAX_LINE_BYTES: usize = 256 << 20;
/// Small enough for a test to go past it.
#[cfg(test)]
const MAX_LINE_BYTES: usize = 4 << 20;
/// How often an idle worker looks whether the consumer has stopped.
const WAKE: Duration = Duration::from_millis(100);

/// One input: a name for messages, and a path (`-` for stdin).
#[derive(Debug, Clone)]
pub struct LineSource {
    pub name: String,
    pub path: PathBuf,
}

impl LineSource {
    /// The inputs named on a command line (`-` or none: stdin), named as given.
    pub fn from_paths(paths: &[PathBuf]) -> Vec<LineSource> {
        if paths.is_empty() {
            return vec![LineSource::stdin()];
        }
        paths
            .iter()
            .map(|p| {
                if p == Path::new("-") {
                    LineSource::stdin()
                } else {
                    LineSource {
                        name: p.display().to_string(),
                        path: p.clone(),
                    }
                }
            })
            .collect()
    }

    fn stdin() -> LineSource {
        LineSource {
            name: "stdin".into(),
            path: PathBuf::from("-"),
        }
    }

    fn open(&self) -> Result<Box<dyn Read + Send>> {
        if self.path == Path::new("-") {
            return Ok(Box::new(io::stdin()));
        }
        let file =
            File::open(&self.path).map_err(|e| Error::no_input(format!("{}: {e}", self.name)))?;
        Ok(Box::new(file))
    }
}

/// Why reading an input stopped before its end.
enum Failure {
    Read(io::Error),
    TooLong,
}

/// Whole lines of one input and the number of the first, or what stopped the reading there.
struct Batch {
    seq: u64,
    source: Arc<str>,
    first_line: u64,
    data: Result<Vec<u8>>,
}

/// A batch's results: the values of the lines before the first bad one, and its error.
type Decoded<T> = (Vec<T>, Option<Error>);

/// The worker count: the machine's parallelism, at most 8; `LIFTKIT_THREADS` (1 to 64)
/// overrides it. Any other value of it is a usage error (exit 2), not ignored.
pub fn workers() -> Result<usize> {
    match std::env::var("LIFTKIT_THREADS") {
        Err(std::env::VarError::NotPresent) => Ok(std::thread::available_parallelism()
            .map(usize::from)
            .unwrap_or(1)
            .min(8)),
        Ok(text) => match text.trim().parse::<usize>() {
            Ok(n @ 1..=64) => Ok(n),
            _ => Err(Error::usage(format!(
                "LIFTKIT_THREADS {text:?}: expected a number of threads from 1 to 64"
            ))),
        },
        Err(std::env::VarError::NotUnicode(text)) => Err(Error::usage(format!(
            "LIFTKIT_THREADS {text:?}: expected a number of threads from 1 to 64"
        ))),
    }
}

/// Calls `map` on every non-blank line of `sources` (trimmed, checked to be UTF-8), on worker
/// threads, and `consume` on each result in input order, on this thread. Stops at the first
/// error, in input order.
pub fn for_each_line<T, M, C>(sources: &[LineSource], map: M, mut consume: C) -> Result<()>
where
    T: Send,
    M: Fn(&str, Location<'_>) -> Result<T> + Sync,
    C: FnMut(T) -> Result<()>,
{
    let workers = workers()?;
    let in_flight = 4 * workers;
    let spare: Arc<Mutex<Vec<Vec<u8>>>> = Arc::default();
    let (batch_tx, batch_rx) = sync_channel::<Batch>(in_flight);
    let (token_tx, token_rx) = sync_channel::<()>(in_flight);
    // The reader is not joined: when this stops early, it may be blocked reading an input that
    // neither ends nor sends (`tail -f ... |`), and the tool must still end with its error. It
    // stops by itself at its next send, or with the process.
    let owned_sources = sources.to_vec();
    let reader_spare = Arc::clone(&spare);
    std::thread::spawn(move || read_batches(&owned_sources, &batch_tx, &token_tx, &reader_spare));
    let stop = AtomicBool::new(false);
    std::thread::scope(|scope| {
        let (result_tx, result_rx) = sync_channel::<(u64, Decoded<T>)>(in_flight);
        let batch_rx = Arc::new(Mutex::new(batch_rx));
        for _ in 0..workers {
            let batch_rx = Arc::clone(&batch_rx);
            let result_tx = result_tx.clone();
            let (map, spare, stop) = (&map, &*spare, &stop);
            scope.spawn(move || decode_batches(&batch_rx, &result_tx, map, spare, stop));
        }
        // From here only the workers hold the results' sender, and only they the batches'
        // receiver: when this thread stops early, the workers see `stop` (or fail to send) and
        // end, so the scope ends.
        drop(result_tx);
        drop(batch_rx);
        // Set on the way out, a panic in `consume` included, so that the workers end.
        let _stop_workers = StopOnDrop(&stop);
        consume_in_order(result_rx, token_rx, &mut consume)
    })
}

/// Tells the workers to stop when dropped.
struct StopOnDrop<'a>(&'a AtomicBool);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// Sends the inputs' lines in batches, each after taking a token (so at most `in_flight` exist),
/// and an error batch where reading fails. Stops quietly when the consumer has gone.
/// Batch buffers are reused (`spare`): allocating a megabyte per batch costs more than it seems.
fn read_batches(
    sources: &[LineSource],
    batches: &SyncSender<Batch>,
    tokens: &SyncSender<()>,
    spare: &Mutex<Vec<Vec<u8>>>,
) {
    let mut seq = 0;
    let mut send = |source: &Arc<str>, first_line: u64, data: Result<Vec<u8>>| {
        if tokens.send(()).is_err() {
            return false;
        }
        let batch = Batch {
            seq,
            source: Arc::clone(source),
            first_line,
            data,
        };
        seq += 1;
        batches.send(batch).is_ok()
    };
    for source in sources {
        let name: Arc<str> = Arc::from(source.name.as_str());
        let mut reader = match source.open() {
            Ok(reader) => reader,
            Err(e) => {
                send(&name, 0, Err(e));
                return;
            }
        };
        // The next line's number, and the start of a line the last read cut (no newline in it).
        let mut next_line = 1u64;
        let mut carry: Vec<u8> = Vec::new();
        loop {
            let mut data = spare
                .lock()
                .expect("buffer pool poisoned")
                .pop()
                .unwrap_or_else(|| Vec::with_capacity(BATCH_BYTES + READ_BYTES));
            data.clear();
            data.append(&mut carry);
            // Read until the batch is full and holds a whole line, the input ends, or it has
            // nothing more for now (a short read: a pipe or terminal) after a whole line, so that
            // what came is decoded without waiting. A line longer than a batch grows this one.
            let (mut at_end, mut failed) = (false, None);
            let mut whole_line = false;
            while data.len() < BATCH_BYTES || !whole_line {
                if !whole_line && data.len() > MAX_LINE_BYTES {
                    failed = Some(Failure::TooLong);
                    break;
                }
                let filled = data.len();
                data.resize(filled + READ_BYTES, 0);
                match reader.read(&mut data[filled..]) {
                    Ok(0) => {
                        data.truncate(filled);
                        at_end = true;
                        break;
                    }
                    Ok(n) => {
                        data.truncate(filled + n);
                        whole_line = whole_line || memchr::memchr(b'\n', &data[filled..]).is_some();
                        if n < READ_BYTES && whole_line {
                            break;
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => data.truncate(filled),
                    Err(e) => {
                        data.truncate(filled);
                        failed = Some(Failure::Read(e));
                        break;
                    }
                }
            }
            // Whole lines only; the rest starts the next batch (or is the last line, at the end).
            if !at_end {
                match memchr::memrchr(b'\n', &data) {
                    Some(last) => carry.extend_from_slice(&data[last + 1..]),
                    None => carry.extend_from_slice(&data),
                }
                let whole = data.len() - carry.len();
                data.truncate(whole);
            }
            let first_line = next_line;
            next_line += memchr::memchr_iter(b'\n', &data).count() as u64;
            if !data.is_empty() && !send(&name, first_line, Ok(data)) {
                return;
            }
            if let Some(failure) = failed {
                let e = match failure {
                    Failure::Read(e) => {
                        Error::no_input(format!("{}:{next_line}: {e}", source.name))
                    }
                    Failure::TooLong => Error::data(format!(
                        "{}:{next_line}: line is longer than {} MiB",
                        source.name,
                        MAX_LINE_BYTES >> 20
                    )),
                };
                send(&name, next_line, Err(e));
                return;
            }
            if at_end {
                break;
            }
        }
    }
}

/// Decodes batches until the reader is done or the consumer has stopped (`stop`, looked at
/// between batches and at least every `WAKE`).
fn decode_batches<T, M>(
    batches: &Mutex<Receiver<Batch>>,
    results: &SyncSender<(u64, Decoded<T>)>,
    map: &M,
    spare: &Mutex<Vec<Vec<u8>>>,
    stop: &AtomicBool,
) where
    M: Fn(&str, Location<'_>) -> Result<T>,
{
    loop {
        if stop.load(Ordering::Relaxed) {
            return;
        }
        let next = batches
            .lock()
            .expect("batch queue poisoned")
            .recv_timeout(WAKE);
        let batch = match next {
            Ok(batch) => batch,
            Err(RecvTimeoutError::Timeout) => continue,
            Err(RecvTimeoutError::Disconnected) => return,
        };
        let Batch {
            seq,
            source,
            first_line,
            data,
        } = batch;
        let decoded = match data {
            Ok(data) => {
                let decoded = decode_guarded(&data, &source, first_line, map);
                spare.lock().expect("buffer pool poisoned").push(data);
                decoded
            }
            Err(e) => (Vec::new(), Some(e)),
        };
        if results.send((seq, decoded)).is_err() {
            return;
        }
    }
}

/// `decode`, with a panic in `map` (a bug) turned into this batch's error: the run then ends with
/// it, in input order, rather than waiting for a result that never comes.
fn decode_guarded<T, M>(data: &[u8], source: &str, first_line: u64, map: &M) -> Decoded<T>
where
    M: Fn(&str, Location<'_>) -> Result<T>,
{
    let decoding = std::panic::AssertUnwindSafe(|| decode(data, source, first_line, map));
    std::panic::catch_unwind(decoding).unwrap_or_else(|panic| {
        let what = panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_default();
        let message =
            format!("{source}:{first_line}: internal error decoding the lines from here: {what}");
        (
            Vec::new(),
            Some(Error::new(crate::ExitCode::Software, message)),
        )
    })
}

fn decode<T, M>(data: &[u8], source: &str, first_line: u64, map: &M) -> Decoded<T>
where
    M: Fn(&str, Location<'_>) -> Result<T>,
{
    let mut values = Vec::new();
    for (offset, raw) in lines(data).enumerate() {
        let here = Location {
            name: source,
            line: first_line + offset as u64,
        };
        if raw.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let decoded = match std::str::from_utf8(raw) {
            Ok(line) => map(line.trim(), here),
            Err(_) => Err(crate::jsonl::not_utf8(here)),
        };
        match decoded {
            Ok(value) => values.push(value),
            Err(e) => return (values, Some(e)),
        }
    }
    (values, None)
}

/// The lines of `data`, each with its newline, and the last one even without: what
/// `data.split_inclusive(|b| *b == b'\n')` gives, with the newlines found by memchr rather than a
/// byte at a time.
fn lines(data: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut start = 0;
    let mut newlines = memchr::memchr_iter(b'\n', data);
    std::iter::from_fn(move || {
        let end = newlines.next().map_or(data.len(), |at| at + 1);
        if start >= end {
            return None;
        }
        let line = &data[start..end];
        start = end;
        Some(line)
    })
}

/// Consumes the batches' values in input order, giving a token back after each batch.
fn consume_in_order<T>(
    results: Receiver<(u64, Decoded<T>)>,
    tokens: Receiver<()>,
    consume: &mut impl FnMut(T) -> Result<()>,
) -> Result<()> {
    let mut waiting: BTreeMap<u64, Decoded<T>> = BTreeMap::new();
    let mut next = 0u64;
    for (seq, decoded) in results.iter() {
        waiting.insert(seq, decoded);
        while let Some((values, error)) = waiting.remove(&next) {
            next += 1;
            for value in values {
                consume(value)?;
            }
            if let Some(e) = error {
                return Err(e);
            }
            let _ = tokens.recv();
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// A file of `n` lines `{"n":i}` (about 3 MiB for 200k: several batches), with blank lines
    /// after every 1000th.
    fn numbered(n: u64, bad_at: &[u64]) -> tempfile::NamedTempFile {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        let mut text = String::new();
        for i in 0..n {
            if bad_at.contains(&i) {
                text.push_str("{\"n\":\n");
            } else {
                text.push_str(&format!("{{\"n\":{i}}}\n"));
            }
            if i % 1000 == 999 {
                text.push_str("   \n");
            }
        }
        file.write_all(text.as_bytes()).unwrap();
        file
    }

    fn source(file: &tempfile::NamedTempFile, name: &str) -> LineSource {
        LineSource {
            name: name.into(),
            path: file.path().to_path_buf(),
        }
    }

    fn parse(line: &str, here: Location<'_>) -> Result<(u64, String)> {
        let value: serde_json::Value =
            serde_json::from_str(line).map_err(|e| Error::data(format!("{here}: {e}")))?;
        Ok((value["n"].as_u64().unwrap(), here.to_string()))
    }

    #[test]
    fn results_come_in_input_order_with_their_line_numbers() {
        let a = numbered(200_000, &[]);
        let b = numbered(10, &[]);
        let mut seen = Vec::new();
        for_each_line(&[source(&a, "a"), source(&b, "b")], parse, |v| {
            seen.push(v);
            Ok(())
        })
        .unwrap();
        assert_eq!(seen.len(), 200_010);
        for (i, (n, _)) in seen[..200_000].iter().enumerate() {
            assert_eq!(*n, i as u64);
        }
        // Line numbers count the blank lines too: record i is on line i + 1 + i / 1000.
        assert_eq!(seen[0].1, "a:1");
        assert_eq!(seen[1000].1, "a:1002");
        assert_eq!(seen[199_999].1, "a:200199");
        assert_eq!(seen[200_000].1, "b:1");
    }

    #[test]
    fn the_first_bad_line_in_input_order_is_the_error_and_values_before_it_are_consumed() {
        let a = numbered(200_000, &[150_000, 190_000]);
        let mut consumed = 0u64;
        let err = for_each_line(&[source(&a, "a")], parse, |_| {
            consumed += 1;
            Ok(())
        })
        .unwrap_err();
        assert!(err.message.starts_with("a:150151: "), "{}", err.message);
        assert_eq!(consumed, 150_000);
    }

    #[test]
    fn a_consumer_error_stops_everything() {
        let a = numbered(200_000, &[]);
        let err = for_each_line(&[source(&a, "a")], parse, |(n, _)| {
            if n == 5 {
                return Err(Error::data("stop"));
            }
            Ok(())
        })
        .unwrap_err();
        assert_eq!(err.message, "stop");
    }

    #[test]
    fn a_missing_input_is_named_after_the_ones_before_it() {
        let a = numbered(3, &[]);
        let missing = LineSource {
            name: "missing.jsonl".into(),
            path: PathBuf::from("/nonexistent/missing.jsonl"),
        };
        let mut consumed = 0;
        let err = for_each_line(&[source(&a, "a"), missing], parse, |_| {
            consumed += 1;
            Ok(())
        })
        .unwrap_err();
        assert_eq!(consumed, 3);
        assert_eq!(err.code, crate::ExitCode::NoInput);
        assert!(
            err.message.starts_with("missing.jsonl: "),
            "{}",
            err.message
        );
    }

    /// A FIFO whose writer sends `lines` and then keeps it open (20 s at most) until `close`:
    /// an input that neither ends nor sends more (`tail -f log | tool`).
    struct OpenFifo {
        _dir: tempfile::TempDir,
        path: PathBuf,
        done: std::sync::mpsc::Sender<()>,
        writer: std::thread::JoinHandle<()>,
        /// Set by the writer just before it closes its end (when told, or after 120 s).
        closing: std::sync::Arc<std::sync::atomic::AtomicBool>,
    }

    impl OpenFifo {
        fn write(lines: &'static [u8]) -> OpenFifo {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("fifo");
            let made = std::process::Command::new("mkfifo")
                .arg(&path)
                .status()
                .unwrap();
            assert!(made.success(), "mkfifo");
            let writer_path = path.clone();
            let (done, done_rx) = std::sync::mpsc::channel::<()>();
            let closing = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
            let closing_w = closing.clone();
            let writer = std::thread::spawn(move || {
                let mut pipe = std::fs::OpenOptions::new()
                    .write(true)
                    .open(writer_path)
                    .unwrap();
                pipe.write_all(lines).unwrap();
                pipe.flush().unwrap();
                let _ = done_rx.recv_timeout(std::time::Duration::from_secs(120));
                closing_w.store(true, std::sync::atomic::Ordering::SeqCst);
            });
            OpenFifo {
                _dir: dir,
                path,
                done,
                writer,
                closing,
            }
        }

        /// Whether the writer had begun closing the input: a reader that returned before this
        /// did not wait for the end of the input.
        fn was_closing(&self) -> bool {
            self.closing.load(std::sync::atomic::Ordering::SeqCst)
        }

        fn source(&self) -> LineSource {
            LineSource {
                name: "fifo".into(),
                path: self.path.clone(),
            }
        }

        fn close(self) {
            self.done.send(()).unwrap();
            self.writer.join().unwrap();
        }
    }

    /// `tail -f log | tool`: the input neither ends nor sends more, and the tool must still end
    /// at a bad line rather than wait for the next one.
    #[test]
    fn an_error_ends_the_run_even_while_the_input_stays_open() {
        let fifo = OpenFifo::write(b"{\"n\":1}\n{\"n\":\n");
        let source = fifo.source();
        let err = for_each_line(&[source], parse, |_| Ok(())).unwrap_err();
        let waited = fifo.was_closing();
        fifo.close();
        assert!(err.message.starts_with("fifo:2: "), "{}", err.message);
        assert!(!waited, "returned only once the input closed");
    }

    /// A line of `bytes` bytes: `{"n":<n>,"pad":"xxx..."}`.
    fn long_line(n: u64, bytes: usize) -> String {
        let head = format!("{{\"n\":{n},\"pad\":\"");
        format!("{head}{}\"}}\n", "x".repeat(bytes - head.len() - 3))
    }

    #[test]
    fn a_line_longer_than_a_batch_is_read_whole() {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        let text = format!(
            "{{\"n\":0}}\n{}{{\"n\":2}}\n{}",
            long_line(1, 3 * BATCH_BYTES),
            long_line(3, BATCH_BYTES + 1)
        );
        file.write_all(text.as_bytes()).unwrap();
        let mut seen = Vec::new();
        for_each_line(&[source(&file, "f")], parse, |(n, here)| {
            seen.push((n, here));
            Ok(())
        })
        .unwrap();
        let expected: Vec<(u64, String)> = (0..4).map(|n| (n, format!("f:{}", n + 1))).collect();
        assert_eq!(seen, expected);
    }

    #[test]
    fn a_line_past_the_limit_is_an_error_naming_it() {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        let text = format!(
            "{{\"n\":0}}\n{}",
            long_line(1, MAX_LINE_BYTES + 2 * READ_BYTES)
        );
        file.write_all(text.as_bytes()).unwrap();
        let mut consumed = 0;
        let err = for_each_line(&[source(&file, "f")], parse, |_| {
            consumed += 1;
            Ok(())
        })
        .unwrap_err();
        assert_eq!(consumed, 1);
        assert_eq!(err.code, crate::ExitCode::DataErr);
        assert_eq!(err.message, "f:2: line is longer than 4 MiB");
    }

    #[test]
    fn a_panic_decoding_a_line_ends_the_run_with_an_internal_error() {
        let a = numbered(200_000, &[]);
        let mut consumed = 0u64;
        let err = for_each_line(
            &[source(&a, "a")],
            |line, here| {
                let (n, at) = parse(line, here)?;
                assert_ne!(n, 120_000, "a bug");
                Ok((n, at))
            },
            |_| {
                consumed += 1;
                Ok(())
            },
        )
        .unwrap_err();
        assert_eq!(err.code, crate::ExitCode::Software);
        assert!(err.message.contains("a bug"), "{}", err.message);
        // The values before the panicking batch were consumed, none after it.
        assert!(consumed <= 120_000, "{consumed}");
    }

    /// A panic in the consumer reaches the caller (as a panic), and the workers end even though
    /// the input stays open.
    #[test]
    fn a_panic_consuming_ends_the_run_while_the_input_stays_open() {
        let fifo = OpenFifo::write(b"{\"n\":1}\n");
        let source = fifo.source();
        let outcome = std::panic::catch_unwind(|| {
            for_each_line(&[source], parse, |_| -> Result<()> {
                panic!("consumer bug")
            })
        });
        let waited = fifo.was_closing();
        fifo.close();
        assert!(outcome.is_err(), "the panic reached the caller");
        assert!(!waited, "the workers waited until the input closed");
    }

    #[test]
    fn lines_are_what_split_inclusive_gives() {
        for data in [
            "",
            "\n",
            "a",
            "a\n",
            "a\nb",
            "a\n\nb\n",
            "\n\na\n\n",
            "ab\ncd\nef",
        ] {
            let expected: Vec<&[u8]> = data.as_bytes().split_inclusive(|b| *b == b'\n').collect();
            let got: Vec<&[u8]> = lines(data.as_bytes()).collect();
            assert_eq!(got, expected, "{data:?}");
        }
    }

    #[test]
    fn invalid_utf8_names_its_line() {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        file.write_all(b"{\"n\":1}\n\xff\n").unwrap();
        let err = for_each_line(&[source(&file, "f")], parse, |_| Ok(())).unwrap_err();
        assert_eq!(err.message, "f:2: line is not valid UTF-8");
    }
}
