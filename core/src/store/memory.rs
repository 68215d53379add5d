//! The embedded backend: one process, nothing to install, state lost on exit.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use async_trait::async_trait;

use super::waiters::Waiters;
use super::{
    LogEntry, Record, Snapshot, Store, StoreError, Subscription, Transitioned, Ttl, one_slot,
};

/// How many writes between two purges of expired entries. Expiry is checked on every read,
/// so the purge only reclaims memory; nothing depends on it for correctness.
const PURGE_EVERY: u64 = 4096;

struct Entry<T> {
    data: T,
    expires: Option<Instant>,
}

impl<T> Entry<T> {
    fn live(&self, now: Instant) -> bool {
        self.expires.is_none_or(|at| at > now)
    }

    fn apply_ttl(&mut self, ttl: Ttl, now: Instant) {
        match ttl {
            Ttl::Keep => {}
            Ttl::Set(duration) => self.expires = Some(now + duration),
            Ttl::Persist => self.expires = None,
        }
    }
}

fn fresh_expiry(ttl: Ttl, now: Instant) -> Option<Instant> {
    match ttl {
        Ttl::Set(duration) => Some(now + duration),
        Ttl::Keep | Ttl::Persist => None,
    }
}

#[derive(Default)]
struct State {
    records: HashMap<String, Entry<Record>>,
    indexes: HashMap<String, Entry<HashSet<String>>>,
    windows: HashMap<String, Entry<VecDeque<Instant>>>,
    logs: HashMap<String, Entry<Vec<Vec<u8>>>>,
    /// Members by their time (ms since the epoch).
    timelines: HashMap<String, Entry<HashMap<String, u64>>>,
    writes: u64,
}

impl State {
    fn record(&mut self, key: &str, now: Instant) -> Option<&mut Entry<Record>> {
        if self.records.get(key).is_some_and(|entry| !entry.live(now)) {
            self.records.remove(key);
        }
        self.records.get_mut(key)
    }

    /// Writes `value` at `key`: the next version of a live record, or version 1 of a new
    /// one; returns the version written.
    fn write(&mut self, key: &str, value: &[u8], ttl: Ttl, now: Instant) -> u64 {
        let version = match self.record(key, now) {
            Some(entry) => {
                entry.data.version += 1;
                entry.data.value = value.to_vec();
                entry.apply_ttl(ttl, now);
                entry.data.version
            }
            None => {
                let entry = Entry {
                    data: Record {
                        value: value.to_vec(),
                        version: 1,
                    },
                    expires: fresh_expiry(ttl, now),
                };
                self.records.insert(key.to_owned(), entry);
                1
            }
        };
        self.wrote(now);
        version
    }

    fn index(&mut self, key: &str, now: Instant) -> Option<&mut Entry<HashSet<String>>> {
        if self.indexes.get(key).is_some_and(|entry| !entry.live(now)) {
            self.indexes.remove(key);
        }
        self.indexes.get_mut(key)
    }

    fn wrote(&mut self, now: Instant) {
        self.writes += 1;
        if self.writes.is_multiple_of(PURGE_EVERY) {
            self.records.retain(|_, entry| entry.live(now));
            self.indexes.retain(|_, entry| entry.live(now));
            self.windows.retain(|_, entry| entry.live(now));
            self.logs.retain(|_, entry| entry.live(now));
            self.timelines.retain(|_, entry| entry.live(now));
        }
    }
}

/// State in this process's memory, behind one lock held only for map operations.
#[derive(Default)]
pub struct MemoryStore {
    state: Mutex<State>,
    waiters: Arc<Waiters>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[async_trait]
impl Store for MemoryStore {
    fn backend(&self) -> &'static str {
        "memory"
    }

    async fn ping(&self) -> Result<(), StoreError> {
        Ok(())
    }

    async fn get(&self, key: &str) -> Result<Option<Record>, StoreError> {
        Ok(self
            .state()
            .record(key, Instant::now())
            .map(|entry| entry.data.clone()))
    }

    async fn insert(&self, key: &str, value: &[u8], ttl: Ttl) -> Result<bool, StoreError> {
        let now = Instant::now();
        let mut state = self.state();
        if state.record(key, now).is_some() {
            return Ok(false);
        }
        let record = Record {
            value: value.to_vec(),
            version: 1,
        };
        let entry = Entry {
            data: record,
            expires: fresh_expiry(ttl, now),
        };
        state.records.insert(key.to_owned(), entry);
        state.wrote(now);
        Ok(true)
    }

    async fn put(&self, key: &str, value: &[u8], ttl: Ttl) -> Result<u64, StoreError> {
        let now = Instant::now();
        let mut state = self.state();
        Ok(state.write(key, value, ttl, now))
    }

    async fn transition(
        &self,
        key: &str,
        expected: u64,
        value: &[u8],
        ttl: Ttl,
        notify: Option<&str>,
    ) -> Result<u64, StoreError> {
        match self
            .transition_or_current(key, expected, value, ttl, notify)
            .await?
        {
            Transitioned::Written(version) => Ok(version),
            Transitioned::Stale(_) => Err(StoreError::Conflict),
        }
    }

    async fn commit(
        &self,
        key: &str,
        expected: Option<u64>,
        value: &[u8],
        ttl: Ttl,
        notify: Option<&str>,
    ) -> Result<u64, StoreError> {
        let now = Instant::now();
        let version = {
            let mut state = self.state();
            let current = state.record(key, now).map(|entry| entry.data.version);
            match (expected, current) {
                (None, Some(_)) => return Err(StoreError::Conflict),
                (Some(_), None) => return Err(StoreError::NotFound),
                (Some(expected), Some(current)) if expected != current => {
                    return Err(StoreError::Conflict);
                }
                _ => {}
            }
            state.write(key, value, ttl, now)
        };
        if let Some(channel) = notify {
            self.waiters.wake(channel);
        }
        Ok(version)
    }

    async fn consume(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let now = Instant::now();
        let mut state = self.state();
        if state.record(key, now).is_none() {
            return Ok(None);
        }
        Ok(state.records.remove(key).map(|entry| entry.data.value))
    }

    async fn delete(&self, key: &str) -> Result<bool, StoreError> {
        let now = Instant::now();
        let mut state = self.state();
        let existed = state.record(key, now).is_some();
        state.records.remove(key);
        state.windows.remove(key);
        Ok(existed)
    }

    async fn index_add(
        &self,
        index: &str,
        member: &str,
        ttl: Ttl,
        notify: Option<&str>,
    ) -> Result<(), StoreError> {
        let now = Instant::now();
        {
            let mut state = self.state();
            match state.index(index, now) {
                Some(entry) => {
                    entry.data.insert(member.to_owned());
                    entry.apply_ttl(ttl, now);
                }
                None => {
                    let entry = Entry {
                        data: HashSet::from([member.to_owned()]),
                        expires: fresh_expiry(ttl, now),
                    };
                    state.indexes.insert(index.to_owned(), entry);
                }
            }
            state.wrote(now);
        }
        if let Some(channel) = notify {
            self.waiters.wake(channel);
        }
        Ok(())
    }

    async fn index_remove(&self, index: &str, member: &str) -> Result<bool, StoreError> {
        let now = Instant::now();
        let mut state = self.state();
        let Some(entry) = state.index(index, now) else {
            return Ok(false);
        };
        let removed = entry.data.remove(member);
        if entry.data.is_empty() {
            state.indexes.remove(index);
        }
        Ok(removed)
    }

    async fn index_members(&self, index: &str) -> Result<Vec<String>, StoreError> {
        Ok(self
            .state()
            .index(index, Instant::now())
            .map(|entry| entry.data.iter().cloned().collect())
            .unwrap_or_default())
    }

    async fn rate_limit(
        &self,
        key: &str,
        limit: u32,
        window: Duration,
    ) -> Result<bool, StoreError> {
        let now = Instant::now();
        let mut state = self.state();
        let entry = state
            .windows
            .entry(key.to_owned())
            .or_insert_with(|| Entry {
                data: VecDeque::new(),
                expires: None,
            });
        while entry
            .data
            .front()
            .is_some_and(|at| now.duration_since(*at) >= window)
        {
            entry.data.pop_front();
        }
        let counted = entry.data.len() < limit as usize;
        if counted {
            entry.data.push_back(now);
            entry.expires = Some(now + window);
        }
        state.wrote(now);
        Ok(counted)
    }

    async fn rate_count(&self, key: &str, window: Duration) -> Result<u32, StoreError> {
        let now = Instant::now();
        let held = self.state().windows.get(key).map_or(0, |entry| {
            entry
                .data
                .iter()
                .filter(|at| now.duration_since(**at) < window)
                .count()
        });
        Ok(u32::try_from(held).unwrap_or(u32::MAX))
    }

    async fn notify(&self, channel: &str) -> Result<(), StoreError> {
        self.waiters.wake(channel);
        Ok(())
    }

    fn subscribe(&self, channel: &str) -> Subscription {
        self.waiters.subscribe(channel)
    }
    async fn snapshot(&self, records: &[&str], indexes: &[&str]) -> Result<Snapshot, StoreError> {
        one_slot(records.iter().chain(indexes).copied())?;
        let now = Instant::now();
        // One lock for every read: no write can land between two of them.
        let mut state = self.state();
        let records = records
            .iter()
            .map(|key| state.record(key, now).map(|entry| entry.data.clone()))
            .collect();
        let indexes = indexes
            .iter()
            .map(|key| {
                state
                    .index(key, now)
                    .map(|entry| entry.data.iter().cloned().collect())
                    .unwrap_or_default()
            })
            .collect();
        Ok(Snapshot { records, indexes })
    }

    async fn transition_or_current(
        &self,
        key: &str,
        expected: u64,
        value: &[u8],
        ttl: Ttl,
        notify: Option<&str>,
    ) -> Result<Transitioned, StoreError> {
        let now = Instant::now();
        let version = {
            let mut state = self.state();
            let entry = state.record(key, now).ok_or(StoreError::NotFound)?;
            if entry.data.version != expected {
                return Ok(Transitioned::Stale(entry.data.clone()));
            }
            state.write(key, value, ttl, now)
        };
        if let Some(channel) = notify {
            self.waiters.wake(channel);
        }
        Ok(Transitioned::Written(version))
    }

    async fn commit_logged(
        &self,
        key: &str,
        expected: Option<u64>,
        value: &[u8],
        ttl: Ttl,
        notify: Option<&str>,
        log: LogEntry<'_>,
    ) -> Result<Transitioned, StoreError> {
        one_slot([key, log.key])?;
        let now = Instant::now();
        let version = {
            let mut state = self.state();
            let version = match (expected, state.record(key, now)) {
                (None, Some(_)) => return Err(StoreError::Conflict),
                (Some(_), None) => return Err(StoreError::NotFound),
                (Some(expected), Some(entry)) if entry.data.version != expected => {
                    return Ok(Transitioned::Stale(entry.data.clone()));
                }
                _ => state.write(key, value, ttl, now),
            };
            if state
                .logs
                .get(log.key)
                .is_some_and(|entry| !entry.live(now))
            {
                state.logs.remove(log.key);
            }
            state
                .logs
                .entry(log.key.to_owned())
                .or_insert_with(|| Entry {
                    data: Vec::new(),
                    expires: Some(now + log.ttl),
                })
                .data
                .push(log.entry.to_vec());
            state.wrote(now);
            version
        };
        if let Some(channel) = notify {
            self.waiters.wake(channel);
        }
        Ok(Transitioned::Written(version))
    }

    async fn log_entries(&self, key: &str) -> Result<Vec<Vec<u8>>, StoreError> {
        let now = Instant::now();
        Ok(self
            .state()
            .logs
            .get(key)
            .filter(|entry| entry.live(now))
            .map(|entry| entry.data.clone())
            .unwrap_or_default())
    }

    async fn timeline_add(
        &self,
        key: &str,
        member: &str,
        at_ms: u64,
        keep: Duration,
    ) -> Result<(), StoreError> {
        let now = Instant::now();
        let mut state = self.state();
        if state
            .timelines
            .get(key)
            .is_some_and(|entry| !entry.live(now))
        {
            state.timelines.remove(key);
        }
        let timeline = state
            .timelines
            .entry(key.to_owned())
            .or_insert_with(|| Entry {
                data: HashMap::new(),
                expires: None,
            });
        let oldest = at_ms.saturating_sub(u64::try_from(keep.as_millis()).unwrap_or(u64::MAX));
        timeline.data.retain(|_, at| *at >= oldest);
        timeline.data.insert(member.to_owned(), at_ms);
        timeline.expires = Some(now + keep);
        state.wrote(now);
        Ok(())
    }

    async fn timeline_page(
        &self,
        key: &str,
        before_ms: Option<u64>,
        limit: usize,
    ) -> Result<Vec<(String, u64)>, StoreError> {
        let now = Instant::now();
        let state = self.state();
        let Some(timeline) = state.timelines.get(key).filter(|entry| entry.live(now)) else {
            return Ok(Vec::new());
        };
        let mut page: Vec<(String, u64)> = timeline
            .data
            .iter()
            .filter(|(_, at)| before_ms.is_none_or(|before| **at < before))
            .map(|(member, at)| (member.clone(), *at))
            .collect();
        // Redis orders equal scores by member, newest first means both descending.
        page.sort_unstable_by(|a, b| b.1.cmp(&a.1).then_with(|| b.0.cmp(&a.0)));
        page.truncate(limit);
        Ok(page)
    }
}
