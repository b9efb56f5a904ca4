//! The one error type of genopred's data, statistics and evaluation crates: every variant says which file, line, column or sample
//! went wrong, so that a user can fix the input without reading code.

use std::path::{Path, PathBuf};

/// A model's own error, kept whole as the source of [`CoreError::Model`] (its kind and details).
pub type ModelError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Errors raised while reading, checking or splitting genomic data.
#[derive(Debug, thiserror::Error)]
pub enum CoreError {
    /// A file could not be opened or read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The operating-system error.
        #[source]
        source: std::io::Error,
    },
    /// A file could not be written.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The operating-system error.
        #[source]
        source: std::io::Error,
    },
    /// A value in a text file could not be parsed.
    #[error("{path}: line {line}{col}: {message}", col = column_text(*column))]
    Parse {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: u64,
        /// 1-based column number, where one applies.
        column: Option<usize>,
        /// What was wrong, and what to do about it.
        message: String,
    },
    /// A file is structurally wrong as a whole (wrong magic bytes, wrong size, no header ...).
    #[error("{path}: {message}")]
    Format {
        /// The file.
        path: PathBuf,
        /// What was wrong.
        message: String,
    },
    /// The inputs are individually valid but do not fit together (no matching ids, unknown trait,
    /// too few samples, every marker removed by QC ...).
    #[error("{0}")]
    Data(String),
    /// A setting is out of its valid range.
    #[error("invalid setting {name} = {value}: {reason}")]
    Config {
        /// The setting's name as the user wrote it.
        name: String,
        /// The value given.
        value: String,
        /// What would be valid.
        reason: String,
    },
    /// A model failed to fit or predict; `source` keeps the model's own error (its kind and
    /// details), `during` says where (`fold 3 (repeat 1)`, `the final fit`).
    #[error("model {model} failed on {during}: {source}")]
    Model {
        /// Model name.
        model: String,
        /// Which fit or prediction failed.
        during: String,
        /// The model's error.
        #[source]
        source: ModelError,
    },
    /// A numerical routine failed (non-finite values, no convergence).
    #[error("numerical failure: {0}")]
    Numerical(String),
}

fn column_text(column: Option<usize>) -> String {
    column.map(|c| format!(", column {c}")).unwrap_or_default()
}

impl CoreError {
    /// An I/O error on reading `path`.
    pub fn io(path: &Path, source: std::io::Error) -> Self {
        CoreError::Io { path: path.to_path_buf(), source }
    }

    /// A parse error at `line` (1-based) and optional `column` (1-based) of `path`.
    pub fn parse(path: &Path, line: u64, column: Option<usize>, message: impl Into<String>) -> Self {
        CoreError::Parse { path: path.to_path_buf(), line, column, message: message.into() }
    }

    /// A whole-file format error.
    pub fn format(path: &Path, message: impl Into<String>) -> Self {
        CoreError::Format { path: path.to_path_buf(), message: message.into() }
    }

    /// An out-of-range setting.
    pub fn config(name: &str, value: impl ToString, reason: impl Into<String>) -> Self {
        CoreError::Config { name: name.to_string(), value: value.to_string(), reason: reason.into() }
    }
}

/// Result alias for this crate.
pub type Result<T, E = CoreError> = std::result::Result<T, E>;
