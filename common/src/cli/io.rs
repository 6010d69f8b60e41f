//! The input/output argument block every record tool shares: input files (stdin when none) and
//! `-o/--output FILE`. `-o` names a file in every tool; the format is `--format`.

use clap::Args;
use std::path::PathBuf;

/// The values of `--format` in any tool: given to `-o`, they are refused with a hint (exit 2)
/// instead of becoming a file named `yaml`.
pub const FORMAT_NAMES: &[&str] = &[
    "jsonl", "json", "ndjson", "yaml", "yml", "csv", "tsv", "table", "nsupdate", "md", "markdown",
    "eml", "html", "svg", "text", "txt",
];

/// `FILE...` and `-o/--output FILE`: the records come from the files given (stdin when none or
/// `-`) and go to stdout, or atomically to FILE. Flatten it into a tool's arguments.
#[derive(Debug, Clone, Args, Default)]
pub struct Io {
    /// Input files (JSON lines); stdin when none or `-`
    #[arg(value_name = "FILE")]
    pub inputs: Vec<PathBuf>,
    #[command(flatten)]
    pub out: OutputFile,
}

/// `-o/--output FILE` alone, for the tools whose input is not records (an engine, a cluster): the
/// output goes to stdout, or atomically to FILE. [`Io`] holds it too.
#[derive(Debug, Clone, Args, Default)]
pub struct OutputFile {
    /// Write to FILE (atomically: it appears only when the run succeeds) instead of stdout
    #[arg(
        short,
        long,
        value_name = "FILE",
        value_parser = output_file,
        long_help = crate::output::long_help("Write to FILE instead of stdout")
    )]
    pub output: Option<PathBuf>,
}

impl OutputFile {
    /// The file named, or None for stdout.
    pub fn path(&self) -> Option<&std::path::Path> {
        self.output.as_deref()
    }
}

/// A `-o` value (or any flag that names an output file): a path, never a format name. `-o yaml`
/// is a usage error that points at `--format yaml`; `-o ./yaml` writes a file named yaml.
pub fn output_file(text: &str) -> Result<PathBuf, String> {
    if text.is_empty() {
        return Err("expected a file name".into());
    }
    let lower = text.to_ascii_lowercase();
    if FORMAT_NAMES.contains(&lower.as_str()) {
        return Err(format!(
            "{text:?} looks like a format, and -o/--output names the output FILE: use --format {lower} (or -o ./{text} for a file of that name)"
        ));
    }
    Ok(PathBuf::from(text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_format_is_not_a_file() {
        for text in ["yaml", "CSV", "table", "jsonl"] {
            let err = output_file(text).unwrap_err();
            assert!(err.contains("--format"), "{err}");
        }
        assert_eq!(output_file("./yaml").unwrap(), PathBuf::from("./yaml"));
        assert_eq!(output_file("out.yaml").unwrap(), PathBuf::from("out.yaml"));
        assert_eq!(output_file("-").unwrap(), PathBuf::from("-"));
        assert!(output_file("").is_err());
    }
}
