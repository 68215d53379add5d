//! The development sender: every message becomes one JSON line in a local file.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use assent_core::clock::Clock;
use assent_core::notify::config::{Invalid, invalid};
use assent_core::notify::{DeliveryError, FileConfig, Message, Notifier, mask_recipient};
use async_trait::async_trait;
use serde::Serialize;

/// Appends messages to the outbox, one JSON line each.
pub(crate) struct FileSender {
    path: Arc<Path>,
    // Held from before the write until the blocking write has finished (the owned guard
    // moves into the blocking task), so lines never interleave even when a timed-out
    // delivery abandons its future mid-write.
    turn: Arc<tokio::sync::Mutex<()>>,
    clock: Arc<dyn Clock>,
}

/// One line of the outbox.
#[derive(Serialize)]
struct Line<'a> {
    channel: &'static str,
    to: &'a str,
    subject: &'a str,
    text: &'a str,
    data: &'a serde_json::Value,
    at: u64,
}

impl FileSender {
    /// Checks at start-up that the file's directory exists (it is not created, so that a
    /// typo does not scatter outboxes).
    pub(crate) fn new(config: &FileConfig, clock: Arc<dyn Clock>) -> Result<Self, Invalid> {
        let directory = match config.path.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent,
            _ => Path::new("."),
        };
        if !directory.is_dir() {
            return Err(invalid(
                "path",
                &format!("the directory {} does not exist", directory.display()),
            ));
        }
        Ok(Self {
            path: Arc::from(config.path.as_path()),
            turn: Arc::default(),
            clock,
        })
    }
}

#[async_trait]
impl Notifier for FileSender {
    fn name(&self) -> &'static str {
        "file"
    }

    async fn send(&self, message: &Message) -> Result<(), DeliveryError> {
        let line = Line {
            channel: message.channel.as_str(),
            to: &message.to,
            subject: &message.subject,
            text: &message.text,
            data: &message.data,
            at: self.clock.now_secs(),
        };
        let mut bytes = serde_json::to_vec(&line)
            .map_err(|error| DeliveryError::Failed(format!("outbox line: {error}")))?;
        bytes.push(b'\n');
        let turn = Arc::clone(&self.turn).lock_owned().await;
        let path = Arc::clone(&self.path);
        let written = tokio::task::spawn_blocking(move || {
            let _turn = turn;
            append(&path, &bytes)
        })
        .await
        .map_err(|error| DeliveryError::Failed(format!("outbox write: {error}")))?;
        written.map_err(|error| {
            DeliveryError::Failed(format!("outbox {}: {error}", self.path.display()))
        })?;
        // The text carries one-time passcodes: log that a message went, never what it said.
        tracing::info!(
            channel = message.channel.as_str(),
            to = %mask_recipient(&message.to),
            outbox = %self.path.display(),
            "message written to the outbox"
        );
        Ok(())
    }
}

fn append(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    file.write_all(bytes)
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    #[test]
    fn a_missing_directory_is_a_start_up_error() {
        let config = FileConfig {
            path: PathBuf::from("/nonexistent-assent-dir/outbox.jsonl"),
        };
        let clock = || Arc::new(assent_core::clock::SystemClock);
        let Err((key, reason)) = FileSender::new(&config, clock()) else {
            panic!("a missing directory is refused");
        };
        assert_eq!(key, "path");
        assert!(reason.contains("/nonexistent-assent-dir"), "{reason}");
        assert!(FileSender::new(&FileConfig::default(), clock()).is_ok());
    }
}
