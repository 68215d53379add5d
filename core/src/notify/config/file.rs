//! `[delivery.file]`: the development outbox (the sender is in `assent-senders`).

use std::path::PathBuf;

use serde::Deserialize;

use super::{Invalid, invalid};

/// `[delivery.file]`: the development outbox.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FileConfig {
    /// The file messages are appended to (relative to the working directory).
    pub path: PathBuf,
}

impl Default for FileConfig {
    fn default() -> Self {
        Self {
            path: PathBuf::from("assent-outbox.jsonl"),
        }
    }
}

impl FileConfig {
    /// Checks that the path names a file.
    pub fn validate(&self) -> Result<(), Invalid> {
        match self.path.file_name() {
            Some(_) => Ok(()),
            None => Err(invalid("path", "the path of a file")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_path_must_name_a_file() {
        let config = FileConfig {
            path: PathBuf::from("/"),
        };
        assert!(config.validate().is_err());
    }
}
