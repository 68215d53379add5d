//! In-process registry of long-poll waiters, keyed by channel. Both backends deliver
//! their wake-ups here: the memory store directly, the Redis store from its pub/sub feed.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::watch;

/// Waiters by channel; a channel's entry lives while someone waits on it.
#[derive(Default)]
pub(crate) struct Waiters {
    channels: Mutex<HashMap<String, watch::Sender<u64>>>,
}

impl Waiters {
    /// Registers a waiter on `channel`.
    pub(crate) fn subscribe(self: &Arc<Self>, channel: &str) -> Subscription {
        let mut channels = self.channels.lock().unwrap_or_else(PoisonError::into_inner);
        let sender = channels
            .entry(channel.to_owned())
            .or_insert_with(|| watch::channel(0).0);
        Subscription {
            receiver: sender.subscribe(),
            channel: channel.to_owned(),
            registry: Arc::clone(self),
        }
    }

    /// Wakes every waiter on `channel` in this process.
    pub(crate) fn wake(&self, channel: &str) {
        let channels = self.channels.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(sender) = channels.get(channel) {
            sender.send_modify(|generation| *generation = generation.wrapping_add(1));
        }
    }

    /// Wakes everyone: used after a lost pub/sub connection, when messages may have been
    /// missed, so that each waiter re-reads the state it waits on.
    pub(crate) fn wake_all(&self) {
        let channels = self.channels.lock().unwrap_or_else(PoisonError::into_inner);
        for sender in channels.values() {
            sender.send_modify(|generation| *generation = generation.wrapping_add(1));
        }
    }

    fn release(&self, channel: &str) {
        let mut channels = self.channels.lock().unwrap_or_else(PoisonError::into_inner);
        // The dropping subscription still holds its receiver, hence `<= 1`.
        if channels
            .get(channel)
            .is_some_and(|sender| sender.receiver_count() <= 1)
        {
            channels.remove(channel);
        }
    }
}

/// One waiter's registration; dropping it unregisters.
pub struct Subscription {
    receiver: watch::Receiver<u64>,
    channel: String,
    registry: Arc<Waiters>,
}

impl Subscription {
    /// Waits until the channel is notified after this subscription was made, or `timeout`
    /// passes; `true` when notified.
    pub async fn wait(&mut self, timeout: Duration) -> bool {
        matches!(
            tokio::time::timeout(timeout, self.receiver.changed()).await,
            Ok(Ok(()))
        )
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.registry.release(&self.channel);
    }
}
