//! The library's error type. Every variant names the file (and, where there is one, the key,
//! tensor or line) at fault, so that a one-line message tells the user what to fix.

use std::path::PathBuf;

/// Errors raised by the mgrpo library.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading or writing a file failed. (The I/O error is part of the message, not a
    /// `source`: a chained source would be printed twice by `{:#}`.)
    #[error("{path}: {error}")]
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
    /// A `config.json` (or a run config) is missing a field, has a bad value, or asks for
    /// something we do not support.
    #[error("{path}: {msg}")]
    Config { path: PathBuf, msg: String },
    /// A checkpoint file is missing, corrupt, or does not match the config.
    #[error("{path}: {msg}")]
    Checkpoint { path: PathBuf, msg: String },
    /// `tokenizer.json` could not be loaded, or text could not be encoded/decoded.
    #[error("tokenizer {path}: {msg}")]
    Tokenizer { path: PathBuf, msg: String },
    /// An input file has a bad line.
    #[error("{path}:{line}: {msg}")]
    Data {
        path: PathBuf,
        line: usize,
        msg: String,
    },
    /// A backend operation failed (a tensor read back, a collective operation, a device
    /// thread that panicked).
    #[error("backend: {0}")]
    Backend(String),
    /// Invalid arguments that are not tied to a file (an unknown template name, ...).
    #[error("{0}")]
    Invalid(String),
}

/// Shorthand for `Result<T, mgrpo::Error>`.
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// Wrap an I/O error with the path it concerns.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            error: source,
        }
    }

    /// A checkpoint error about `path`.
    pub fn checkpoint(path: impl Into<PathBuf>, msg: impl Into<String>) -> Self {
        Error::Checkpoint {
            path: path.into(),
            msg: msg.into(),
        }
    }

    /// A configuration error about `path`.
    pub fn config(path: impl Into<PathBuf>, msg: impl Into<String>) -> Self {
        Error::Config {
            path: path.into(),
            msg: msg.into(),
        }
    }
}
