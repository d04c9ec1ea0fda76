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
    /// A `config.json` or a run config cannot be read as a whole (not JSON/TOML, not an
    /// object).
    #[error("{path}: {msg}")]
    Config { path: PathBuf, msg: String },
    /// One key of a config (`config.json`, a run config, or a setting given on the command
    /// line, where there is no file) is missing, has a bad value, or asks for something we do
    /// not support.
    #[error("{}key `{key}`: {msg}", file_prefix(.file))]
    ConfigKey {
        file: Option<PathBuf>,
        key: String,
        msg: String,
    },
    /// A checkpoint file is missing, corrupt, or does not match the config.
    #[error("{path}: {msg}")]
    Checkpoint { path: PathBuf, msg: String },
    /// One tensor of a checkpoint is missing, unexpected, or has the wrong shape or dtype
    /// (`msg` names it too, so the message reads on its own).
    #[error("{path}: {msg}")]
    Tensor {
        path: PathBuf,
        tensor: String,
        msg: String,
    },
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
    /// A backend operation failed (a tensor read back, a sum over devices, a device
    /// thread that panicked).
    #[error("backend: {0}")]
    Backend(String),
    /// A command-line argument (`--device`, `--set`, `--prompt`, ...) is invalid.
    #[error("{arg}: {msg}")]
    Arg { arg: String, msg: String },
    /// A reward function failed: an external reward command could not start, timed out,
    /// exited with an error or wrote something that is not one number per row (`msg` names
    /// the row).
    #[error("reward `{reward}`: {msg}")]
    Reward { reward: String, msg: String },
    /// Writing a value as JSON or TOML failed: a bug, not bad input.
    #[error("serialising {what}: {msg}")]
    Serialize { what: &'static str, msg: String },
    /// A run stopped at SIGINT or SIGTERM after checkpointing its last step; `msg` says how
    /// to resume. The CLI exits with 128 + `signal`.
    #[error("{msg}")]
    Interrupted { signal: i32, msg: String },
    /// A multi-node run cannot go on: a node is gone, silent, unauthenticated or disagrees
    /// (`rl::mesh`); `node` is this process's `node_rank`.
    #[error("node {node}: {msg}")]
    Node { node: usize, msg: String },
    /// Invalid arguments that are not tied to a file or a key (an unknown template name, an
    /// empty dataset, ...).
    #[error("{0}")]
    Invalid(String),
}

fn file_prefix(file: &Option<PathBuf>) -> String {
    file.as_ref()
        .map(|p| format!("{}: ", p.display()))
        .unwrap_or_default()
}

/// Why one config key is unusable, before it is known which file it came from: what the
/// `validate()` methods return. [`KeyError::at`] names the file; `?` alone (a setting given on
/// the command line) gives an [`Error::ConfigKey`] without one.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyError {
    pub key: String,
    pub msg: String,
}

impl KeyError {
    pub fn new(key: impl Into<String>, msg: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            msg: msg.into(),
        }
    }

    /// The same key inside the table `table` (`star` + `problems` → `star.problems`).
    pub fn within(self, table: &str) -> Self {
        Self::new(format!("{table}.{}", self.key), self.msg)
    }

    /// The error, naming the file the key came from.
    pub fn at(self, file: impl Into<PathBuf>) -> Error {
        Error::ConfigKey {
            file: Some(file.into()),
            key: self.key,
            msg: self.msg,
        }
    }
}

impl std::fmt::Display for KeyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "key `{}`: {}", self.key, self.msg)
    }
}

impl From<KeyError> for Error {
    fn from(e: KeyError) -> Self {
        Error::ConfigKey {
            file: None,
            key: e.key,
            msg: e.msg,
        }
    }
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

    /// An error about the tensor `tensor` of the checkpoint file `path`.
    pub fn tensor(
        path: impl Into<PathBuf>,
        tensor: impl Into<String>,
        msg: impl Into<String>,
    ) -> Self {
        Error::Tensor {
            path: path.into(),
            tensor: tensor.into(),
            msg: msg.into(),
        }
    }

    /// An invalid command-line argument `arg`.
    pub fn arg(arg: impl Into<String>, msg: impl Into<String>) -> Self {
        Error::Arg {
            arg: arg.into(),
            msg: msg.into(),
        }
    }

    /// Serialising `what` failed.
    pub fn serialize(what: &'static str, e: impl std::fmt::Display) -> Self {
        Error::Serialize {
            what,
            msg: e.to_string(),
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
