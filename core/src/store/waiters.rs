//! In-process registry of long-poll waiters, keyed by channel. Both backends deliver
//! their wake-ups here: the memory store directly, the Redis store from its pub/sub feed.
//!
//! Each channel has one shared waiter (a generation counter that wakes on change); every
//! poll on it holds only a receiver and the channel's name, shared with the registry.
//! A wake-up costs one map lookup, whatever the number of channels or polls.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::watch;

/// Waiters by channel; a channel's entry lives while someone waits on it.
#[derive(Default)]
pub(crate) struct Waiters {
    channels: Mutex<HashMap<Arc<str>, watch::Sender<u64>>>,
}

impl Waiters {
    /// Registers a waiter on `channel`.
    pub(crate) fn subscribe(self: &Arc<Self>, channel: &str) -> Subscription {
        let mut channels = self.channels.lock().unwrap_or_else(PoisonError::into_inner);
        let (name, receiver) = match channels.get_key_value(channel) {
            Some((name, sender)) => (Arc::clone(name), sender.subscribe()),
            None => {
                let name: Arc<str> = Arc::from(channel);
                let (sender, receiver) = watch::channel(0);
                channels.insert(Arc::clone(&name), sender);
                (name, receiver)
            }
        };
        Subscription {
            receiver,
            channel: name,
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

    /// How many channels have someone waiting (tests check that entries go away).
    #[cfg(test)]
    fn channels(&self) -> usize {
        self.channels
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
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
    channel: Arc<str>,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn polls_of_one_channel_share_its_waiter_and_the_last_one_out_removes_it() {
        let waiters = Arc::new(Waiters::default());
        let mut first = waiters.subscribe("ch:a");
        let mut second = waiters.subscribe("ch:a");
        let mut other = waiters.subscribe("ch:b");
        assert_eq!(waiters.channels(), 2);
        assert!(Arc::ptr_eq(&first.channel, &second.channel));

        waiters.wake("ch:a");
        assert!(first.wait(Duration::from_secs(1)).await);
        assert!(second.wait(Duration::from_secs(1)).await);
        assert!(!other.wait(Duration::from_millis(10)).await);

        drop(first);
        assert_eq!(waiters.channels(), 2);
        drop(second);
        drop(other);
        assert_eq!(waiters.channels(), 0);
    }
}
