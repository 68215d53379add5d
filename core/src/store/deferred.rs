//! A Redis store reached in the background. assent starts, and answers `/healthz`, before
//! Redis is up (a container platform starts both at once); until the connection is made
//! and the start-up writes are done, every store call fails at once as unavailable, so
//! requests get a quick 503 and `/readyz` stays false.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use async_trait::async_trait;
use prometheus::IntCounter;

use super::waiters::Waiters;
use super::{
    LogEntry, Record, RedisOptions, RedisStore, Snapshot, Store, StoreError, Subscription,
    Transitioned, Ttl,
};

/// First pause between two connection attempts; it doubles up to [`MAX_CONNECT_BACKOFF`].
const FIRST_CONNECT_BACKOFF: Duration = Duration::from_millis(100);
/// Longest pause between two connection attempts: Redis coming up is noticed this soon.
const MAX_CONNECT_BACKOFF: Duration = Duration::from_secs(2);

/// What must be written to a freshly connected store before it may serve (the users of
/// the configuration); an error means "try again with the next connection".
pub type Prepare = Arc<
    dyn Fn(Arc<dyn Store>) -> Pin<Box<dyn Future<Output = Result<(), StoreError>> + Send>>
        + Send
        + Sync,
>;

/// Connects to Redis and runs `prepare` on it; on failure, returns a store that answers
/// "unavailable" while a background task retries with backoff until it succeeds.
pub async fn connect_or_defer(
    options: RedisOptions,
    errors: IntCounter,
    prepare: Prepare,
) -> Arc<dyn Store> {
    let redacted = redacted_url(&options.url);
    let error = match establish(&options, &errors, &prepare).await {
        Ok(store) => return store,
        Err(error) => error,
    };
    tracing::warn!(store = %redacted, %error, "Redis is not reachable yet; retrying in the background");
    let deferred = Arc::new(Deferred::default());
    let target = Arc::clone(&deferred);
    tokio::spawn(async move {
        let mut backoff = FIRST_CONNECT_BACKOFF;
        let mut attempt: u64 = 1;
        loop {
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(MAX_CONNECT_BACKOFF);
            attempt += 1;
            match establish(&options, &errors, &prepare).await {
                Ok(store) => {
                    tracing::info!(store = %redacted, attempt, "connected to Redis: ready");
                    let _ = target.connected.set(store);
                    // Anyone who subscribed meanwhile re-reads, now from Redis.
                    target.idle.wake_all();
                    return;
                }
                // Not every attempt: a Redis that stays down for hours must not flood the log.
                Err(error) if attempt.is_power_of_two() || attempt.is_multiple_of(64) => {
                    tracing::warn!(store = %redacted, attempt, %error, "Redis still not reachable");
                }
                Err(error) => {
                    tracing::debug!(store = %redacted, attempt, %error, "Redis not reachable")
                }
            }
        }
    });
    deferred
}

async fn establish(
    options: &RedisOptions,
    errors: &IntCounter,
    prepare: &Prepare,
) -> Result<Arc<dyn Store>, StoreError> {
    let store: Arc<dyn Store> =
        Arc::new(RedisStore::connect(options.clone(), errors.clone()).await?);
    prepare(Arc::clone(&store)).await?;
    Ok(store)
}

/// The URL as it may be logged: scheme, hosts and ports, never a user name or password.
fn redacted_url(raw: &str) -> String {
    match super::Topology::parse(raw) {
        Ok(topology) => topology.redacted(),
        Err(_) => "(unparsable Redis URL)".to_owned(),
    }
}

/// The store before and after Redis answered.
#[derive(Default)]
struct Deferred {
    connected: OnceLock<Arc<dyn Store>>,
    /// Where subscriptions made before the connection wait; woken when it is made.
    idle: Arc<Waiters>,
}

impl Deferred {
    fn inner(&self) -> Result<&dyn Store, StoreError> {
        self.connected
            .get()
            .map(|store| store.as_ref())
            .ok_or_else(|| StoreError::Unavailable("not connected to Redis yet".to_owned()))
    }
}

#[async_trait]
impl Store for Deferred {
    fn backend(&self) -> &'static str {
        "redis"
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.inner()?.ping().await
    }

    async fn get(&self, key: &str) -> Result<Option<Record>, StoreError> {
        self.inner()?.get(key).await
    }

    async fn insert(&self, key: &str, value: &[u8], ttl: Ttl) -> Result<bool, StoreError> {
        self.inner()?.insert(key, value, ttl).await
    }

    async fn spend(&self, key: &str, ttl: Duration) -> Result<bool, StoreError> {
        self.inner()?.spend(key, ttl).await
    }

    async fn put(&self, key: &str, value: &[u8], ttl: Ttl) -> Result<u64, StoreError> {
        self.inner()?.put(key, value, ttl).await
    }

    async fn transition(
        &self,
        key: &str,
        expected: u64,
        value: &[u8],
        ttl: Ttl,
        notify: Option<&str>,
    ) -> Result<u64, StoreError> {
        self.inner()?
            .transition(key, expected, value, ttl, notify)
            .await
    }

    async fn commit(
        &self,
        key: &str,
        expected: Option<u64>,
        value: &[u8],
        ttl: Ttl,
        notify: Option<&str>,
    ) -> Result<u64, StoreError> {
        self.inner()?
            .commit(key, expected, value, ttl, notify)
            .await
    }

    async fn consume(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.inner()?.consume(key).await
    }

    async fn delete(&self, key: &str) -> Result<bool, StoreError> {
        self.inner()?.delete(key).await
    }

    async fn index_add(
        &self,
        index: &str,
        member: &str,
        ttl: Ttl,
        notify: Option<&str>,
    ) -> Result<(), StoreError> {
        self.inner()?.index_add(index, member, ttl, notify).await
    }

    async fn index_remove(&self, index: &str, member: &str) -> Result<bool, StoreError> {
        self.inner()?.index_remove(index, member).await
    }

    async fn index_members(&self, index: &str) -> Result<Vec<String>, StoreError> {
        self.inner()?.index_members(index).await
    }

    async fn rate_limit(
        &self,
        key: &str,
        limit: u32,
        window: Duration,
    ) -> Result<bool, StoreError> {
        self.inner()?.rate_limit(key, limit, window).await
    }

    async fn rate_count(&self, key: &str, window: Duration) -> Result<u32, StoreError> {
        self.inner()?.rate_count(key, window).await
    }

    async fn notify(&self, channel: &str) -> Result<(), StoreError> {
        self.inner()?.notify(channel).await
    }

    fn subscribe(&self, channel: &str) -> Subscription {
        match self.connected.get() {
            Some(store) => store.subscribe(channel),
            None => self.idle.subscribe(channel),
        }
    }

    async fn snapshot(&self, records: &[&str], indexes: &[&str]) -> Result<Snapshot, StoreError> {
        self.inner()?.snapshot(records, indexes).await
    }

    async fn transition_or_current(
        &self,
        key: &str,
        expected: u64,
        value: &[u8],
        ttl: Ttl,
        notify: Option<&str>,
    ) -> Result<Transitioned, StoreError> {
        self.inner()?
            .transition_or_current(key, expected, value, ttl, notify)
            .await
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
        self.inner()?
            .commit_logged(key, expected, value, ttl, notify, log)
            .await
    }

    async fn log_entries(&self, key: &str) -> Result<Vec<Vec<u8>>, StoreError> {
        self.inner()?.log_entries(key).await
    }

    async fn timeline_add(
        &self,
        key: &str,
        member: &str,
        at_ms: u64,
        keep: Duration,
    ) -> Result<(), StoreError> {
        self.inner()?.timeline_add(key, member, at_ms, keep).await
    }

    async fn timeline_page(
        &self,
        key: &str,
        before_ms: Option<u64>,
        limit: usize,
    ) -> Result<Vec<(String, u64)>, StoreError> {
        self.inner()?.timeline_page(key, before_ms, limit).await
    }
}

#[cfg(test)]
mod tests {
    use super::redacted_url;

    #[test]
    fn a_logged_url_has_no_credentials() {
        assert_eq!(
            redacted_url("redis://user:hunter2@redis.internal:6380/0"),
            "redis://redis.internal:6380"
        );
        assert_eq!(
            redacted_url("redis-sentinel://:hunter2@s1:26379,s2:26379/main"),
            "redis-sentinel://s1:26379,s2:26379/main"
        );
        assert!(!redacted_url("redis://:hunter2@[::1").contains("hunter2"));
    }
}
