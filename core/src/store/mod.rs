//! The one state abstraction: versioned records with TTLs, compare-and-set transitions,
//! consume-once reads, per-owner indexes, and wake-ups that cross instances.
//!
//! Keys are opaque to the store: they are built in [`crate::keys`] and nowhere else.

mod connection;
mod deferred;
mod memory;
mod redis;
mod retry;
mod topology;
mod waiters;

use std::time::Duration;

use async_trait::async_trait;

pub use self::deferred::{Prepare, connect_or_defer};
pub use self::memory::MemoryStore;
pub use self::redis::{RedisOptions, RedisStore};
pub(crate) use self::retry::{Attempt, retry_lost_races, retry_lost_races_with};
pub use self::topology::{BadUrl, Topology};
pub use self::waiters::Subscription;

/// Why a store operation did not happen.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The backend could not be reached or did not answer in time.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// A conditional transition lost a race: the record's version moved on.
    #[error("the record was changed concurrently")]
    Conflict,
    /// The record a transition expected does not exist (never did, expired, or consumed).
    #[error("the record does not exist")]
    NotFound,
    /// One atomic step named keys of more than one hash tag: a Redis Cluster could not run
    /// it, so no backend does.
    #[error("the keys of one atomic step carry different hash tags")]
    CrossSlot,
}

/// A stored value and the version a conditional transition must name to replace it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// The opaque value (JSON for every domain record).
    pub value: Vec<u8>,
    /// Starts at 1 on creation and grows by one on every write.
    pub version: u64,
}

/// What a write does to a record's time to live.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ttl {
    /// Keep whatever expiry the record already has.
    Keep,
    /// Expire this long after the write.
    Set(Duration),
    /// Long-lived record (users, devices): no expiry.
    Persist,
}

/// What [`Store::snapshot`] read, in the order asked.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// Each record asked for, `None` where it does not exist (or expired).
    pub records: Vec<Option<Record>>,
    /// The members of each set asked for, in no particular order (empty where none).
    pub indexes: Vec<Vec<String>>,
}

/// The part of a key a Redis Cluster hashes to choose its slot: the text of the first
/// `{...}` when not empty, else the whole key.
fn hash_tag(key: &str) -> &str {
    key.split_once('{')
        .and_then(|(_, rest)| rest.split_once('}'))
        .map(|(tag, _)| tag)
        .filter(|tag| !tag.is_empty())
        .unwrap_or(key)
}

/// Refuses keys that do not all carry one hash tag: what one atomic step touches must
/// live on one slot. Checked by every backend, so that a mistake shows on memory and on a
/// single Redis as it would on a Cluster.
fn one_slot<'a>(keys: impl IntoIterator<Item = &'a str>) -> Result<(), StoreError> {
    let mut tags = keys.into_iter().map(hash_tag);
    match tags.next() {
        Some(first) if tags.any(|tag| tag != first) => Err(StoreError::CrossSlot),
        _ => Ok(()),
    }
}

/// What [`Store::transition_or_current`] came to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Transitioned {
    /// Written (and published): the new version.
    Written(u64),
    /// Not written: the version had moved on, and this is the record as it is now.
    Stale(Record),
}

/// An entry appended to a list beside a record (a flow's audit events) by the commit that
/// changes the record: both keys carry the same hash tag.
#[derive(Clone, Copy, Debug)]
pub struct LogEntry<'a> {
    /// The list's key.
    pub key: &'a str,
    /// The entry, appended last.
    pub entry: &'a [u8],
    /// The list's time to live, set when this entry creates it; later entries keep the
    /// expiry, so a list started with its record's lifetime plus a retention outlives the
    /// record by that retention.
    pub ttl: Duration,
}

/// State shared by every assent instance.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// The backend's name, for readiness reports and logs.
    fn backend(&self) -> &'static str;

    /// Succeeds when the backend answers.
    async fn ping(&self) -> Result<(), StoreError>;

    /// Reads a record, if it exists and has not expired.
    async fn get(&self, key: &str) -> Result<Option<Record>, StoreError>;

    /// Creates a record at version 1 unless one exists; `false` when it already did.
    async fn insert(&self, key: &str, value: &[u8], ttl: Ttl) -> Result<bool, StoreError>;

    /// Sets a marker at `key` that lives for `ttl` unless one is there already; `false`
    /// when it was (a replay). Markers are never read back, only set once: no version is
    /// kept, so a backend can do it in one command.
    async fn spend(&self, key: &str, ttl: Duration) -> Result<bool, StoreError> {
        self.insert(key, b"", Ttl::Set(ttl)).await
    }

    /// Writes a record whatever its current state; returns the new version.
    async fn put(&self, key: &str, value: &[u8], ttl: Ttl) -> Result<u64, StoreError>;

    /// Replaces a record only if it is still at `expected` version, and then publishes on
    /// `notify` (in the same atomic step); returns the new version.
    async fn transition(
        &self,
        key: &str,
        expected: u64,
        value: &[u8],
        ttl: Ttl,
        notify: Option<&str>,
    ) -> Result<u64, StoreError>;

    /// A transition or, with `expected` = `None`, an insert, publishing on `notify` in the
    /// same atomic step. `Conflict` when the version moved on or the record to insert
    /// already exists; `NotFound` when the record to replace is gone. One key only: in a
    /// Redis Cluster, what one atomic step touches must live on one slot.
    async fn commit(
        &self,
        key: &str,
        expected: Option<u64>,
        value: &[u8],
        ttl: Ttl,
        notify: Option<&str>,
    ) -> Result<u64, StoreError>;

    /// Reads and deletes a record in one atomic step: of any number of concurrent callers,
    /// exactly one gets the value.
    async fn consume(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError>;

    /// Deletes a record (or a rate limit's window); `true` when a record existed.
    async fn delete(&self, key: &str) -> Result<bool, StoreError>;

    /// Adds `member` to the set at `index` (created on demand), then publishes on `notify`
    /// in the same atomic step.
    async fn index_add(
        &self,
        index: &str,
        member: &str,
        ttl: Ttl,
        notify: Option<&str>,
    ) -> Result<(), StoreError>;

    /// Removes `member` from the set at `index`; `true` when it was there.
    async fn index_remove(&self, index: &str, member: &str) -> Result<bool, StoreError>;

    /// Lists the members of the set at `index`, in no particular order.
    async fn index_members(&self, index: &str) -> Result<Vec<String>, StoreError>;

    /// Counts one event in the sliding window of length `window` at `key`, unless `limit`
    /// events are already in it; `true` when counted. Atomic: concurrent callers on any
    /// instance never exceed the limit together.
    async fn rate_limit(&self, key: &str, limit: u32, window: Duration)
    -> Result<bool, StoreError>;

    /// How many events the sliding window of length `window` at `key` holds now (a read:
    /// counts nothing).
    async fn rate_count(&self, key: &str, window: Duration) -> Result<u32, StoreError>;

    /// Wakes every subscriber of `channel`, on every instance sharing this store.
    async fn notify(&self, channel: &str) -> Result<(), StoreError>;

    /// Registers interest in `channel`. Subscribe *before* reading the state you wait on,
    /// so that a write landing in between still wakes you.
    fn subscribe(&self, channel: &str) -> Subscription;

    /// Reads the records at `records` and the sets at `indexes` in one atomic step (one
    /// script on Redis): no write lands between two of the reads. Every key must carry the
    /// same hash tag, so that they share one Cluster slot; `CrossSlot` otherwise.
    async fn snapshot(&self, records: &[&str], indexes: &[&str]) -> Result<Snapshot, StoreError>;
    /// As [`Store::transition`], but a version mismatch writes nothing and answers with the
    /// record's current value and version in the same reply, so that the caller can apply
    /// its change again without another read; `NotFound` when the record is gone.
    async fn transition_or_current(
        &self,
        key: &str,
        expected: u64,
        value: &[u8],
        ttl: Ttl,
        notify: Option<&str>,
    ) -> Result<Transitioned, StoreError>;

    /// As [`Store::commit`] (an insert with `expected` = `None`, `Conflict` if the record
    /// exists) or [`Store::transition_or_current`] (`Stale` when the version moved on),
    /// appending `log` to its list in the same atomic step: an entry exists exactly when
    /// its change was written. `CrossSlot` unless `log.key` shares the record's hash tag.
    async fn commit_logged(
        &self,
        key: &str,
        expected: Option<u64>,
        value: &[u8],
        ttl: Ttl,
        notify: Option<&str>,
        log: LogEntry<'_>,
    ) -> Result<Transitioned, StoreError>;

    /// The entries of the list at `key`, oldest first (empty when there is none).
    async fn log_entries(&self, key: &str) -> Result<Vec<Vec<u8>>, StoreError>;

    /// Adds `member` at time `at_ms` (ms since the epoch) to the timeline at `key`, drops
    /// the members older than `at_ms - keep`, and has the timeline expire `keep` after this
    /// write: one atomic step.
    async fn timeline_add(
        &self,
        key: &str,
        member: &str,
        at_ms: u64,
        keep: Duration,
    ) -> Result<(), StoreError>;

    /// Up to `limit` members of the timeline at `key` with their times, newest first,
    /// only those strictly before `before_ms` when given.
    async fn timeline_page(
        &self,
        key: &str,
        before_ms: Option<u64>,
        limit: usize,
    ) -> Result<Vec<(String, u64)>, StoreError>;
}

/// Redis options from the configuration.
pub fn redis_options(url: &str, options: &crate::config::StoreOptions) -> RedisOptions {
    RedisOptions {
        url: url.to_owned(),
        key_prefix: options.key_prefix.clone(),
        timeout: Duration::from_millis(options.timeout_ms),
        replica_acks: options.replica_acks,
    }
}
