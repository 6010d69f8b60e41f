//! The small CSV files people keep next to a run (rbac-gen's user map, owner-notice's address
//! map): rows of principals and what they map to, read one way, with errors naming `file:line`.

use crate::{Error, Result};

/// One non-blank row, its fields trimmed, with the line it starts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub line: u64,
    pub fields: Vec<String>,
}

impl Row {
    /// The row for an error message: its fields quoted and joined by commas.
    pub fn quoted(&self) -> String {
        let quoted: Vec<String> = self.fields.iter().map(|f| format!("{f:?}")).collect();
        quoted.join(",")
    }
}

/// The rows of `text` (read from the file `name`): blank lines and `#` comments are skipped, and
/// so is a first row whose first column contains one of `header_words` (compared in lower case).
/// Rows may have any number of columns; the caller checks them. Bad CSV is a configuration error
/// (exit 78) naming `name:line`.
pub fn read(name: &str, text: &str, header_words: &[&str]) -> Result<Vec<Row>> {
    // Comment lines become blank lines (csv 1.4's own comment skipping loses count of them), so
    // that `start_line` finds every record's line.
    let text: String = text
        .split_inclusive('\n')
        .map(|line| match line.strip_prefix('#') {
            Some(_) if line.ends_with('\n') => "\n",
            Some(_) => "",
            None => line,
        })
        .collect();
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let mut rows = Vec::new();
    let mut first = true;
    for row in reader.records() {
        let row = row.map_err(|e| {
            let line = e.position().map(|p| p.line()).unwrap_or(0);
            Error::config(format!("{name}:{line}: not valid CSV: {e}"))
        })?;
        if row.iter().all(str::is_empty) {
            continue;
        }
        let header = first
            && row.get(0).is_some_and(|head| {
                let head = head.to_ascii_lowercase();
                header_words.iter().any(|w| head.contains(w))
            });
        first = false;
        if header {
            continue;
        }
        rows.push(Row {
            line: row.position().map_or(0, |p| start_line(&text, p)),
            fields: row.iter().map(str::to_string).collect(),
        });
    }
    Ok(rows)
}

/// The line a record starts on. csv 1.4 gives the position where it began reading, before the
/// blank lines it skips: they are counted here.
fn start_line(text: &str, position: &csv::Position) -> u64 {
    let mut line = position.line();
    let mut rest = text.get(position.byte() as usize..).unwrap_or_default();
    while let Some(after) = rest
        .strip_prefix('\n')
        .or_else(|| rest.strip_prefix("\r\n"))
    {
        line += 1;
        rest = after;
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_lines_header_comments_and_errors() {
        let text = "Principal,name\n# people\n\n alice@example.com , alice \n\"x,y@z\",xy,extra\n";
        let rows = read("u.csv", text, &["owner", "principal"]).unwrap();
        assert_eq!(
            rows,
            [
                Row {
                    line: 4,
                    fields: vec!["alice@example.com".into(), "alice".into()]
                },
                Row {
                    line: 5,
                    fields: vec!["x,y@z".into(), "xy".into(), "extra".into()]
                },
            ]
        );
        // Only the first row can be a header; a comment is no first row.
        let rows = read("u.csv", "# who\nprincipal,c\n\n#\na,b", &["principal"]).unwrap();
        assert_eq!((rows.len(), rows[0].line), (1, 5));
        let rows = read("u.csv", "a,b\nprincipal,c\n", &["principal"]).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[1].quoted(), "\"principal\",\"c\"");
    }
}
