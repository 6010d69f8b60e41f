//! Notices from minijinja templates that escape every value for where it lands: in Markdown each
//! value is a code span (nothing in it is markup: no emphasis, link, HTML or heading), or with
//! `|prose` running text with its punctuation escaped; in a plain-text mail body control
//! characters are made visible, so that no value starts a line of its own. Names, FQDNs and
//! addresses come from the engine and guests: untrusted.

use crate::notice::Notice;
use common::untrusted::for_terminal;
use common::{Error, ExitCode, Result};
use minijinja::value::ValueKind;
use minijinja::{AutoEscape, Environment, State, Value};
use std::fmt::Write;

/// The built-in notice, used unless --template gives another.
pub const DEFAULT_TEMPLATE: &str = include_str!("templates/notice.md.j2");
/// The built-in subject of the messages (--subject replaces it; also a template).
pub const DEFAULT_SUBJECT: &str = "{% if after %}Your virtual machines after the move to KubeVirt\
{% else %}Your virtual machines are moving to KubeVirt{% endif %}";

/// Where rendered text lands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// A Markdown document.
    Markdown,
    /// Plain text: a mail body or header.
    Text,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Markdown => "markdown",
            Mode::Text => "text",
        }
    }
}

pub struct Renderer {
    env: Environment<'static>,
}

impl Renderer {
    /// `template` is the notice's source (`name` in errors), `subject` the subject's.
    pub fn new(mode: Mode, name: &str, template: String, subject: String) -> Result<Self> {
        let mut env = Environment::new();
        env.set_trim_blocks(true);
        env.set_lstrip_blocks(true);
        env.set_keep_trailing_newline(true);
        env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
        let escape = AutoEscape::Custom(mode.name());
        env.set_auto_escape_callback(move |_| escape);
        env.set_formatter(format_value);
        env.add_filter("prose", prose);
        let bad = |what: &str, e: minijinja::Error| {
            Error::usage(format!("{what}: not a valid template: {}", one_line(&e)))
        };
        env.add_template_owned("notice", template)
            .map_err(|e| bad(name, e))?;
        env.add_template_owned("subject", subject)
            .map_err(|e| bad("--subject", e))?;
        Ok(Renderer { env })
    }

    /// The notice's text.
    pub fn notice(&self, notice: &Notice) -> Result<String> {
        self.render("notice", notice)
    }

    /// The subject: one line (a header holds no line break), control characters as spaces.
    pub fn subject(&self, notice: &Notice) -> Result<String> {
        let text = self.render("subject", notice)?;
        let line: String = text
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        Ok(line.split_whitespace().collect::<Vec<_>>().join(" "))
    }

    fn render(&self, name: &str, notice: &Notice) -> Result<String> {
        let template = self
            .env
            .get_template(name)
            .map_err(|e| Error::new(ExitCode::Software, one_line(&e)))?;
        template.render(notice).map_err(|e| {
            Error::usage(format!(
                "{} {}: {name} template: {}",
                notice.owner.kind,
                for_terminal(&notice.owner.principal),
                one_line(&e)
            ))
        })
    }
}

/// minijinja's error with its causes, on one line.
fn one_line(e: &minijinja::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        let _ = write!(text, ": {s}");
        source = s.source();
    }
    text.replace('\n', " ")
}

fn mode_of(state: &State) -> Mode {
    match state.auto_escape() {
        AutoEscape::Custom("markdown") => Mode::Markdown,
        _ => Mode::Text,
    }
}

/// Every `{{ value }}`: none and undefined as nothing, numbers and booleans as they are, text
/// escaped for the mode (unless a filter already made it safe).
fn format_value(
    out: &mut minijinja::Output,
    state: &State,
    value: &Value,
) -> std::result::Result<(), minijinja::Error> {
    if value.is_none() || value.is_undefined() {
        return Ok(());
    }
    let text = match (value.is_safe(), value.kind()) {
        (true, _) | (_, ValueKind::Number | ValueKind::Bool) => value.to_string(),
        (false, _) => {
            let raw = value
                .as_str()
                .map_or_else(|| value.to_string(), str::to_string);
            match mode_of(state) {
                Mode::Markdown => code_span(&raw),
                Mode::Text => for_terminal(&raw).into_owned(),
            }
        }
    };
    out.write_str(&text)
        .map_err(|e| minijinja::Error::new(minijinja::ErrorKind::WriteFailure, e.to_string()))
}

/// `|prose`: running text, escaped for the mode and marked safe.
fn prose(state: &State, value: Value) -> Value {
    if value.is_none() || value.is_undefined() {
        return Value::from_safe_string(String::new());
    }
    let raw = value
        .as_str()
        .map_or_else(|| value.to_string(), str::to_string);
    Value::from_safe_string(match mode_of(state) {
        Mode::Markdown => markdown_text(&raw),
        Mode::Text => for_terminal(&raw).into_owned(),
    })
}

/// `text` as a CommonMark code span: control characters made visible first (a code span would
/// turn a line break into a space, and a line of its own is what an attacker wants), delimited
/// by one backtick more than the longest run inside, padded with a space where the text starts
/// or ends with a backtick or space (CommonMark strips one space from each side).
pub fn code_span(text: &str) -> String {
    let text = for_terminal(text);
    if text.is_empty() {
        return String::new();
    }
    let mut longest = 0;
    let mut run = 0;
    for c in text.chars() {
        run = if c == '`' { run + 1 } else { 0 };
        longest = longest.max(run);
    }
    let fence = "`".repeat(longest + 1);
    let edge = |c: Option<char>| matches!(c, Some('`' | ' '));
    let pad = if edge(text.chars().next()) || edge(text.chars().last()) {
        " "
    } else {
        ""
    };
    format!("{fence}{pad}{text}{pad}{fence}")
}

/// `text` as CommonMark running text: control characters made visible, every ASCII punctuation
/// character backslash-escaped (CommonMark 0.31 section 2.4: any of them may be, and then is
/// literal), so no value opens emphasis, a link, an autolink, HTML, a heading or a list.
pub fn markdown_text(text: &str) -> String {
    let text = for_terminal(text);
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if c.is_ascii_punctuation() {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_spans_hold_any_text_literally() {
        assert_eq!(code_span("ba_shared_vm_1"), "`ba_shared_vm_1`");
        assert_eq!(code_span("a`b"), "``a`b``");
        assert_eq!(code_span("`x"), "`` `x ``");
        assert_eq!(code_span(" x"), "`  x `");
        assert_eq!(code_span("a\nb"), "`a\\nb`");
        assert_eq!(code_span(""), "");
    }

    #[test]
    fn running_text_escapes_punctuation() {
        assert_eq!(markdown_text("*a* [b](c)"), "\\*a\\* \\[b\\]\\(c\\)");
        assert_eq!(markdown_text("Zoë"), "Zoë");
        assert_eq!(markdown_text("a\n# b"), "a\\\\n\\# b");
    }
}
