//! JSON lines in and out: one value per line, blank lines skipped, errors that name the input and
//! line; buffered output where a closed pipe ends the tool quietly.

use crate::error::{Error, Result, write_error};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};

mod strict;

/// Where lines come from: a file, or stdin (`-` or no file at all).
pub struct Input {
    name: String,
    reader: Box<dyn BufRead>,
    line_number: u64,
    buffer: Vec<u8>,
}

/// Where a line came from (`file:line`), formatted only when an error needs it.
#[derive(Debug, Clone, Copy)]
pub struct Location<'a> {
    pub name: &'a str,
    pub line: u64,
}

impl std::fmt::Display for Location<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.name, self.line)
    }
}

impl Input {
    pub fn stdin() -> Self {
        Self::from_reader(
            "stdin",
            Box::new(BufReader::with_capacity(1 << 16, io::stdin())),
        )
    }

    pub fn open(path: &Path) -> Result<Self> {
        if path == Path::new("-") {
            return Ok(Self::stdin());
        }
        let file =
            File::open(path).map_err(|e| Error::no_input(format!("{}: {e}", path.display())))?;
        Ok(Self::from_reader(
            &path.display().to_string(),
            Box::new(BufReader::with_capacity(1 << 16, file)),
        ))
    }

    pub fn from_reader(name: &str, reader: Box<dyn BufRead>) -> Self {
        Input {
            name: name.to_string(),
            reader,
            line_number: 0,
            buffer: Vec::new(),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// `name:line`, for error messages about the line just read.
    pub fn location(&self) -> String {
        self.here().to_string()
    }

    /// The line just read, as a [`Location`].
    pub fn here(&self) -> Location<'_> {
        Location {
            name: &self.name,
            line: self.line_number,
        }
    }

    /// The next non-blank line, trimmed, without its newline, and where it is. `None` at the end of
    /// input. The line is checked to be UTF-8 (an error naming the line otherwise) and lives until
    /// the next call.
    pub fn next_line(&mut self) -> Option<Result<(&str, Location<'_>)>> {
        Some(
            self.next_raw_line()?
                .map(|(text, here)| (text.trim(), here)),
        )
    }

    /// [`Input::next_line`] as the input has it, only its line end (`\n`, `\r\n`) taken off: for
    /// a tool that passes lines through byte for byte.
    pub fn next_raw_line(&mut self) -> Option<Result<(&str, Location<'_>)>> {
        loop {
            self.buffer.clear();
            match self.reader.read_until(b'\n', &mut self.buffer) {
                Ok(0) => return None,
                Ok(_) => {}
                Err(e) => {
                    return Some(Err(Error::no_input(format!(
                        "{}:{}: {e}",
                        self.name,
                        self.line_number + 1
                    ))));
                }
            }
            self.line_number += 1;
            if self.buffer.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let here = Location {
                name: &self.name,
                line: self.line_number,
            };
            return Some(match std::str::from_utf8(&self.buffer) {
                Ok(text) => Ok((text.trim_end_matches(['\n', '\r']), here)),
                Err(_) => Err(not_utf8(here)),
            });
        }
    }

    /// The next non-blank line, decoded as `T` (duplicate keys refused, see [`parse_value`]).
    /// `None` at the end of input.
    pub fn next_value<T: DeserializeOwned + 'static>(&mut self) -> Option<Result<T>> {
        let (line, here) = match self.next_line()? {
            Ok(found) => found,
            Err(e) => return Some(Err(e)),
        };
        let parsed = decode::<T>(line);
        Some(parsed.map_err(|e| Error::data(format!("{here}: {}", describe_json_error(&e)))))
    }
}

/// A JSON text as a `Value`, with the one rule of liftkit for duplicate keys: an object that names
/// a key twice is an error (bad data, 65). serde_json alone keeps the last, while a typed record
/// refuses it; one rule for every tool keeps two tools from reading one line two ways.
pub fn parse_value(text: &str) -> serde_json::Result<Value> {
    serde_json::from_str::<StrictValue>(text).map(|strict| strict.0)
}

/// Checks a JSON text against the duplicate-key rule of [`parse_value`] without building it: for
/// tools that pass a record through as it came and read only a few of its fields.
pub fn refuse_duplicate_keys(text: &str) -> serde_json::Result<()> {
    strict::from_str::<serde::de::IgnoredAny>(text).map(|_| ())
}

/// `text` decoded as `T` under the duplicate-key rule of [`parse_value`], in one pass: the fields
/// `T` skips are checked as they are skipped. For partial views of records (`record::VmView`).
pub fn from_str_strict<'de, T: serde::Deserialize<'de>>(text: &'de str) -> serde_json::Result<T> {
    strict::from_str(text)
}

/// `line` decoded as `T` through [`parse_value`] (without a second pass when `T` is `Value`).
fn decode<T: DeserializeOwned + 'static>(line: &str) -> serde_json::Result<T> {
    let mut value = Some(parse_value(line)?);
    if let Some(same) = (&mut value as &mut dyn std::any::Any).downcast_mut::<Option<T>>() {
        return Ok(same.take().expect("set above"));
    }
    serde_json::from_value(value.expect("set above"))
}

/// A `Value` whose objects name each key once.
struct StrictValue(Value);

impl<'de> serde::Deserialize<'de> for StrictValue {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(StrictVisitor).map(StrictValue)
    }
}

struct StrictVisitor;

impl<'de> serde::de::Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(StrictValue(item)) = seq.next_element()? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut object = serde_json::Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let StrictValue(value) = map.next_value()?;
            if object.contains_key(&key) {
                return Err(serde::de::Error::custom(format!(
                    "duplicate key {}",
                    Value::String(key)
                )));
            }
            object.insert(key, value);
        }
        Ok(Value::Object(object))
    }
}

/// What a line that did not decode is: invalid JSON, or JSON of another shape.
pub fn describe_json_error(err: &serde_json::Error) -> String {
    use serde_json::error::Category;
    let text = err.to_string();
    // serde_json appends " at line 1 column N"; within a JSON line the column is what matters.
    let text = match text.rfind(" at line ") {
        Some(pos) => format!("{} (column {})", &text[..pos], err.column()),
        None => text,
    };
    match err.classify() {
        Category::Syntax | Category::Eof => format!("not valid JSON: {text}"),
        Category::Data => format!("not the expected record: {text}"),
        Category::Io => text,
    }
}

/// Every input named on the command line, in order; stdin when there are none.
pub struct Inputs {
    paths: Vec<PathBuf>,
    next: usize,
    current: Option<Input>,
}

impl Inputs {
    pub fn new(paths: &[PathBuf]) -> Self {
        let paths = if paths.is_empty() {
            vec![PathBuf::from("-")]
        } else {
            paths.to_vec()
        };
        Inputs {
            paths,
            next: 0,
            current: None,
        }
    }

    /// The next value of any input, with the location (`file:line`) it came from.
    pub fn next_value<T: DeserializeOwned + 'static>(&mut self) -> Option<Result<(T, String)>> {
        loop {
            if self.current.is_none() {
                let path = self.paths.get(self.next)?.clone();
                self.next += 1;
                match Input::open(&path) {
                    Ok(input) => self.current = Some(input),
                    Err(e) => return Some(Err(e)),
                }
            }
            let input = self.current.as_mut()?;
            match input.next_value::<T>() {
                Some(Ok(value)) => return Some(Ok((value, input.location()))),
                Some(Err(e)) => return Some(Err(e)),
                None => self.current = None,
            }
        }
    }

    /// Calls `f` for every non-blank line (trimmed, checked to be UTF-8) with where it came from;
    /// stops at the first error. For tools that decode only the fields they need.
    pub fn for_each_line(
        &mut self,
        mut f: impl FnMut(&str, Location<'_>) -> Result<()>,
    ) -> Result<()> {
        for path in &self.paths[self.next..] {
            let mut input = Input::open(path)?;
            while let Some(found) = input.next_line() {
                let (line, here) = found?;
                f(line, here)?;
            }
        }
        self.next = self.paths.len();
        Ok(())
    }

    /// Calls `f` for every value; stops at the first error.
    pub fn for_each<T: DeserializeOwned + 'static>(
        &mut self,
        mut f: impl FnMut(T, &str) -> Result<()>,
    ) -> Result<()> {
        while let Some(item) = self.next_value::<T>() {
            let (value, location) = item?;
            f(value, &location)?;
        }
        Ok(())
    }
}

/// Buffered JSON-lines writer over stdout or any `Write`.
pub struct Writer<W: Write> {
    name: String,
    out: io::BufWriter<W>,
}

impl Writer<io::Stdout> {
    pub fn stdout() -> Self {
        Writer {
            name: "stdout".into(),
            out: io::BufWriter::with_capacity(1 << 16, io::stdout()),
        }
    }
}

impl<W: Write> Writer<W> {
    pub fn new(name: &str, inner: W) -> Self {
        Writer {
            name: name.to_string(),
            out: io::BufWriter::with_capacity(1 << 16, inner),
        }
    }

    pub fn write<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<()> {
        serde_json::to_writer(&mut self.out, value).map_err(|e| match e.io_error_kind() {
            Some(kind) => write_error(&self.name, &io::Error::from(kind)),
            None => Error::new(
                crate::ExitCode::Software,
                format!("{}: cannot encode record: {e}", self.name),
            ),
        })?;
        self.out
            .write_all(b"\n")
            .map_err(|e| write_error(&self.name, &e))
    }

    /// Raw bytes (a pre-rendered table or CSV).
    pub fn write_raw(&mut self, bytes: &[u8]) -> Result<()> {
        self.out
            .write_all(bytes)
            .map_err(|e| write_error(&self.name, &e))
    }

    pub fn flush(&mut self) -> Result<()> {
        self.out.flush().map_err(|e| write_error(&self.name, &e))
    }

    pub fn into_inner(self) -> Result<W> {
        let name = self.name;
        self.out
            .into_inner()
            .map_err(|e| write_error(&name, e.error()))
    }
}

/// A line that is not UTF-8: bad input data (65), like any other malformed line; the input
/// itself was read.
pub fn not_utf8(here: Location<'_>) -> Error {
    Error::data(format!("{here}: line is not valid UTF-8"))
}

/// Reads all of a small input (a CSV or mapping file) with an error naming the file; text that
/// is not UTF-8 is bad data (65) naming the line.
pub fn read_to_string(path: &Path) -> Result<String> {
    let mut bytes = Vec::new();
    let mut file =
        File::open(path).map_err(|e| Error::no_input(format!("{}: {e}", path.display())))?;
    file.read_to_end(&mut bytes)
        .map_err(|e| Error::no_input(format!("{}: {e}", path.display())))?;
    String::from_utf8(bytes).map_err(|e| {
        let valid = &e.as_bytes()[..e.utf8_error().valid_up_to()];
        let line = 1 + valid.iter().filter(|b| **b == b'\n').count() as u64;
        not_utf8(Location {
            name: &path.display().to_string(),
            line,
        })
    })
}

/// Every line of every file in `paths` (none when `paths` is empty), decoded as `T`; errors
/// name the file and line.
pub fn read_all<T: DeserializeOwned + 'static>(paths: &[PathBuf]) -> Result<Vec<T>> {
    let mut all = Vec::new();
    for path in paths {
        let mut input = Input::open(path)?;
        while let Some(value) = input.next_value::<T>() {
            all.push(value?);
        }
    }
    Ok(all)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn input(text: &'static str) -> Input {
        Input::from_reader("test.jsonl", Box::new(text.as_bytes()))
    }

    #[test]
    fn skips_blank_lines_and_counts_lines() {
        let mut inp = input("{\"a\":1}\n\n  \n{\"a\":2}\n");
        let a: Value = inp.next_value().unwrap().unwrap();
        assert_eq!(a["a"], 1);
        let b: Value = inp.next_value().unwrap().unwrap();
        assert_eq!(b["a"], 2);
        assert_eq!(inp.location(), "test.jsonl:4");
        assert!(inp.next_value::<Value>().is_none());
    }

    #[test]
    fn malformed_line_names_file_and_line() {
        let mut inp = input("{\"a\":1}\n{\"a\":\n");
        inp.next_value::<Value>().unwrap().unwrap();
        let err = inp.next_value::<Value>().unwrap().unwrap_err();
        assert_eq!(err.code, crate::ExitCode::DataErr);
        assert!(
            err.message.starts_with("test.jsonl:2: not valid JSON"),
            "{}",
            err.message
        );
    }

    #[test]
    fn invalid_utf8_is_an_error_not_a_panic() {
        let bytes: &'static [u8] = b"{\"a\":1}\n\xff\xfe\n";
        let mut inp = Input::from_reader("bin", Box::new(bytes));
        inp.next_value::<Value>().unwrap().unwrap();
        let err = inp.next_value::<Value>().unwrap().unwrap_err();
        assert!(err.message.contains("bin:2"), "{}", err.message);
        assert_eq!(err.code, crate::ExitCode::DataErr);
    }

    #[test]
    fn a_duplicate_key_is_bad_data_at_any_depth() {
        let mut inp = input("{\"a\":1,\"b\":{\"c\":1,\"c\":2}}\n{\"a\":1,\"a\":1}\n");
        for line in [1, 2] {
            let err = inp.next_value::<Value>().unwrap().unwrap_err();
            assert_eq!(err.code, crate::ExitCode::DataErr);
            assert!(
                err.message.starts_with(&format!("test.jsonl:{line}: ")),
                "{}",
                err.message
            );
            assert!(err.message.contains("duplicate key"), "{}", err.message);
        }
        assert_eq!(
            parse_value("[{\"a\":[1,{\"b\":null}]},2.5,\"x\",true]").unwrap(),
            serde_json::json!([{"a": [1, {"b": null}]}, 2.5, "x", true])
        );
    }

    #[test]
    fn the_key_check_agrees_with_parse_value() {
        let lines = [
            r#"{"a":1,"b":{"c":1,"c":2}}"#,
            r#"{"a":1,"a":1}"#,
            r#"{"a":[{"x":1},{"x":2,"y":[{"z":1,"z":1}]}]}"#,
            r#"{"\u0061":1,"a":2}"#,
            r#"{"a":1,"b":[1,2,{"c":null}],"d":"e"}"#,
            r#"[{"a":1},{"a":1}]"#,
            r#"{"a":"#,
        ];
        for line in lines {
            let strict = parse_value(line).map(|_| ()).map_err(|e| e.to_string());
            let checked = refuse_duplicate_keys(line).map_err(|e| e.to_string());
            assert_eq!(checked, strict, "{line}");
        }
    }

    /// A partial view as the streaming tools decode one: some fields read (nested, optional, in
    /// a list, an enum), the rest skipped.
    #[derive(serde::Deserialize, Debug, PartialEq)]
    struct View<'a> {
        #[serde(borrow)]
        a: Option<&'a str>,
        #[serde(default)]
        b: Option<Vec<Inner>>,
        #[serde(default)]
        e: Option<Kind>,
    }

    #[derive(serde::Deserialize, Debug, PartialEq)]
    struct Inner {
        c: u64,
    }

    #[derive(serde::Deserialize, Debug, PartialEq)]
    enum Kind {
        Unit,
        Struct { d: u64 },
    }

    /// The one-pass check of a view refuses exactly the lines `parse_value` refuses, whether the
    /// key named twice is in a field the view reads, one it skips, or deep in either; and where
    /// both accept, the view holds what the line says.
    #[test]
    fn a_strict_view_agrees_with_parse_value() {
        let refused = [
            r#"{"a":"x","a":"y"}"#,
            r#"{"a":"x","z":1,"z":2}"#,
            r#"{"a":"x","b":[{"c":1},{"c":2,"c":3}]}"#,
            r#"{"a":"x","b":[{"c":1,"q":{"r":1,"r":2}}]}"#,
            r#"{"a":"x","skip":{"deep":[{"r":1},{"r":1,"r":1}]}}"#,
            r#"{"a":"x","skip":[1,{"r":{"s":1,"s":2}}]}"#,
            r#"{"\u0061":"x","a":"y"}"#,
            r#"{"a":"x","e":{"Struct":{"d":1,"d":2}}}"#,
            r#"{"a":"x","b":[{"c":1,"c":1}],"b":null}"#,
            r#"{"abcdefgh-1-ijklmnop":1,"abcdefgh-1-ijklmnop":2}"#,
        ];
        for line in refused {
            assert!(parse_value(line).is_err(), "{line}");
            // serde's derive refuses a field it reads twice itself ("duplicate field").
            let err = from_str_strict::<View>(line).unwrap_err().to_string();
            assert!(err.starts_with("duplicate "), "{line}: {err}");
        }
        let accepted = [
            (
                r#"{"a":"x"}"#,
                View {
                    a: Some("x"),
                    b: None,
                    e: None,
                },
            ),
            (
                r#"{"z":{"a":1,"b":2},"b":[{"c":1,"a":1},{"c":2,"a":1}],"a":null,"e":"Unit"}"#,
                View {
                    a: None,
                    b: Some(vec![Inner { c: 1 }, Inner { c: 2 }]),
                    e: Some(Kind::Unit),
                },
            ),
            (
                r#"{"a":"x","e":{"Struct":{"d":7,"x":{"d":1}}},"q":[{"a":1},{"a":2}]}"#,
                View {
                    a: Some("x"),
                    b: None,
                    e: Some(Kind::Struct { d: 7 }),
                },
            ),
        ];
        for (line, expected) in accepted {
            assert!(parse_value(line).is_ok(), "{line}");
            assert_eq!(from_str_strict::<View>(line).unwrap(), expected, "{line}");
        }
        // Not JSON, or more than one value: refused as serde_json refuses them.
        for line in [r#"{"a":"#, r#"{"a":"x"} {}"#] {
            assert!(from_str_strict::<View>(line).is_err(), "{line}");
        }
    }

    #[test]
    fn writer_writes_one_value_per_line() {
        let mut w = Writer::new("buf", Vec::new());
        w.write(&serde_json::json!({"x": 1})).unwrap();
        w.write(&serde_json::json!([1, 2])).unwrap();
        let bytes = w.into_inner().unwrap();
        assert_eq!(String::from_utf8(bytes).unwrap(), "{\"x\":1}\n[1,2]\n");
    }

    #[test]
    fn read_all_reads_every_file_in_order_and_names_the_bad_line() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a.jsonl"), dir.path().join("b.jsonl"));
        std::fs::write(&a, "1\n\n2\n").unwrap();
        std::fs::write(&b, "3\n\"x\"\n").unwrap();
        assert!(read_all::<u32>(&[]).unwrap().is_empty());
        assert_eq!(read_all::<u32>(std::slice::from_ref(&a)).unwrap(), [1, 2]);
        let err = read_all::<u32>(&[a, b]).unwrap_err();
        assert!(err.message.contains("b.jsonl:2"), "{err}");
    }

    #[test]
    fn raw_lines_keep_all_but_the_line_end() {
        let mut inp = input("  {\"a\":1} \r\n\n{\"a\":2}");
        let (text, here) = inp.next_raw_line().unwrap().unwrap();
        assert_eq!((text, here.line), ("  {\"a\":1} ", 1));
        let (text, here) = inp.next_raw_line().unwrap().unwrap();
        assert_eq!((text, here.line), ("{\"a\":2}", 3));
        assert!(inp.next_raw_line().is_none());
        let mut inp = input("  {\"a\":1} \r\n");
        assert_eq!(inp.next_line().unwrap().unwrap().0, "{\"a\":1}");
    }
}
