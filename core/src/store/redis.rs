//! The production backend: Redis, shared by every instance. Each transition is one Lua
//! script (one round trip, atomic); wake-ups travel over pub/sub so that a waiter on one
//! instance is woken by a write made on another.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures_util::StreamExt;
use prometheus::IntCounter;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Client, Script};

use super::waiters::Waiters;
use super::{Record, Store, StoreError, Subscription, Ttl};

/// Longest pause between two attempts to restore the pub/sub feed.
const MAX_FEED_BACKOFF: Duration = Duration::from_secs(2);

/// The longest pause between two reconnection attempts of the command connection. The
/// manager's backoff starts at one second and multiplies by its factor (100), so this cap
/// is every pause: without a short one, assent came back up to 4 s after Redis did.
const MAX_RECONNECT_DELAY: Duration = Duration::from_millis(250);

/// Scripts take the TTL as one argument: `k` keeps it, `p` removes it, digits set it (ms).
const APPLY_TTL: &str = r"
local function apply_ttl(key, ttl)
  if ttl == 'p' then redis.call('PERSIST', key)
  elseif ttl ~= 'k' then redis.call('PEXPIRE', key, ttl) end
end
";

const INSERT: &str = r"
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'v', 1, 'd', ARGV[1])
apply_ttl(KEYS[1], ARGV[2])
return 1
";

const PUT: &str = r"
local v = redis.call('HINCRBY', KEYS[1], 'v', 1)
redis.call('HSET', KEYS[1], 'd', ARGV[1])
apply_ttl(KEYS[1], ARGV[2])
return v
";

const TRANSITION: &str = r"
local v = redis.call('HGET', KEYS[1], 'v')
if not v then return -1 end
if v ~= ARGV[1] then return -2 end
local next = tonumber(v) + 1
redis.call('HSET', KEYS[1], 'v', next, 'd', ARGV[2])
apply_ttl(KEYS[1], ARGV[3])
if ARGV[4] ~= '' then redis.call('PUBLISH', ARGV[4], '1') end
return next
";

// KEYS[1] the record, KEYS[2..] records to create. ARGV: expected version ('' inserts),
// value, ttl, channel, then a value and a ttl per record to create.
const COMMIT: &str = r"
local v = redis.call('HGET', KEYS[1], 'v')
if ARGV[1] == '' then
  if v then return -2 end
else
  if not v then return -1 end
  if v ~= ARGV[1] then return -2 end
end
for i = 2, #KEYS do
  if redis.call('EXISTS', KEYS[i]) == 1 then return -2 end
end
local next = (tonumber(v) or 0) + 1
redis.call('HSET', KEYS[1], 'v', next, 'd', ARGV[2])
apply_ttl(KEYS[1], ARGV[3])
for i = 2, #KEYS do
  redis.call('HSET', KEYS[i], 'v', 1, 'd', ARGV[2 * i + 1])
  apply_ttl(KEYS[i], ARGV[2 * i + 2])
end
if ARGV[4] ~= '' then redis.call('PUBLISH', ARGV[4], '1') end
return next
";

const CONSUME: &str = r"
local d = redis.call('HGET', KEYS[1], 'd')
if d then redis.call('DEL', KEYS[1]) end
return d
";

const INDEX_ADD: &str = r"
redis.call('SADD', KEYS[1], ARGV[1])
apply_ttl(KEYS[1], ARGV[2])
if ARGV[3] ~= '' then redis.call('PUBLISH', ARGV[3], '1') end
return 1
";

// A sorted set of event times (ms, Redis's own clock so that instances agree): drop what
// left the window, then add one unless full. ARGV: window ms, limit, a unique member.
const RATE_LIMIT: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[1]))
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then return 0 end
redis.call('ZADD', KEYS[1], now, ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return 1
";

// The same window, read only. ARGV: window ms.
const RATE_COUNT: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
return redis.call('ZCOUNT', KEYS[1], '(' .. (now - tonumber(ARGV[1])), '+inf')
";

struct Scripts {
    insert: Script,
    put: Script,
    transition: Script,
    commit: Script,
    consume: Script,
    index_add: Script,
    rate_limit: Script,
    rate_count: Script,
}

impl Scripts {
    fn new() -> Self {
        let with_ttl = |body: &str| Script::new(&format!("{APPLY_TTL}{body}"));
        Self {
            insert: with_ttl(INSERT),
            put: with_ttl(PUT),
            transition: with_ttl(TRANSITION),
            commit: with_ttl(COMMIT),
            consume: Script::new(CONSUME),
            index_add: with_ttl(INDEX_ADD),
            rate_limit: Script::new(RATE_LIMIT),
            rate_count: Script::new(RATE_COUNT),
        }
    }
}

fn ttl_arg(ttl: Ttl) -> String {
    match ttl {
        Ttl::Keep => "k".to_owned(),
        Ttl::Persist => "p".to_owned(),
        Ttl::Set(duration) => duration.as_millis().max(1).to_string(),
    }
}

/// Where and how to reach Redis.
#[derive(Clone)]
pub struct RedisOptions {
    /// A `redis://` or `rediss://` URL.
    pub url: String,
    /// Put before every key and channel, so that several deployments (or tests) can share
    /// one Redis. Must not contain `{` or `}`: hash tags belong to the keys.
    pub key_prefix: String,
    /// Upper bound on any one store call, connection attempts included.
    pub timeout: Duration,
}

impl std::fmt::Debug for RedisOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisOptions")
            .field("url", &"(redacted)")
            .field("key_prefix", &self.key_prefix)
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// Aborts the pub/sub feed when the store goes away.
struct FeedTask(tokio::task::JoinHandle<()>);

impl Drop for FeedTask {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Redis through a reconnecting connection manager.
pub struct RedisStore {
    connection: ConnectionManager,
    scripts: Scripts,
    options: RedisOptions,
    waiters: Arc<Waiters>,
    errors: IntCounter,
    _feed: FeedTask,
}

impl RedisStore {
    /// Connects, subscribes to the wake-up feed, and keeps both alive across outages.
    /// `errors` counts every failed store call.
    pub async fn connect(options: RedisOptions, errors: IntCounter) -> Result<Self, StoreError> {
        let client = Client::open(options.url.as_str())
            .map_err(|error| StoreError::Unavailable(format!("bad Redis URL: {error}")))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(options.timeout)
            .set_response_timeout(options.timeout)
            .set_max_delay(MAX_RECONNECT_DELAY.as_millis() as u64);
        let connection = bounded(
            options.timeout,
            client.get_connection_manager_with_config(config),
        )
        .await
        .map_err(|error| StoreError::Unavailable(format!("cannot reach Redis: {error}")))?;

        let waiters = Arc::new(Waiters::default());
        let pattern = format!("{}ch:*", options.key_prefix);
        let first = bounded(options.timeout, subscribe_feed(&client, &pattern))
            .await
            .map_err(|error| StoreError::Unavailable(format!("cannot subscribe: {error}")))?;
        let feed = tokio::spawn(run_feed(
            client,
            pattern,
            options.key_prefix.len() + "ch:".len(),
            Arc::clone(&waiters),
            first,
        ));

        Ok(Self {
            connection,
            scripts: Scripts::new(),
            options,
            waiters,
            errors,
            _feed: FeedTask(feed),
        })
    }

    fn key(&self, key: &str) -> String {
        format!("{}{key}", self.options.key_prefix)
    }

    fn channel(&self, channel: &str) -> String {
        format!("{}ch:{channel}", self.options.key_prefix)
    }

    /// Runs one store call within the timeout, counting failures.
    async fn call<T>(
        &self,
        fut: impl Future<Output = redis::RedisResult<T>>,
    ) -> Result<T, StoreError> {
        bounded(self.options.timeout, fut).await.map_err(|error| {
            self.errors.inc();
            tracing::warn!(%error, "redis call failed");
            StoreError::Unavailable(error)
        })
    }
}

async fn bounded<T>(
    timeout: Duration,
    fut: impl Future<Output = redis::RedisResult<T>>,
) -> Result<T, String> {
    match tokio::time::timeout(timeout, fut).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(error)) => Err(error.to_string()),
        Err(_) => Err(format!("no answer within {timeout:?}")),
    }
}

async fn subscribe_feed(client: &Client, pattern: &str) -> redis::RedisResult<redis::aio::PubSub> {
    let mut pubsub = client.get_async_pubsub().await?;
    pubsub.psubscribe(pattern).await?;
    Ok(pubsub)
}

/// Delivers pub/sub messages to local waiters; reconnects with backoff when the feed drops.
async fn run_feed(
    client: Client,
    pattern: String,
    name_offset: usize,
    waiters: Arc<Waiters>,
    first: redis::aio::PubSub,
) {
    let mut pubsub = Some(first);
    let mut backoff = Duration::from_millis(50);
    loop {
        if let Some(mut feed) = pubsub.take() {
            backoff = Duration::from_millis(50);
            let mut messages = feed.on_message();
            while let Some(message) = messages.next().await {
                if let Some(channel) = message.get_channel_name().get(name_offset..) {
                    waiters.wake(channel);
                }
            }
            tracing::warn!("redis pub/sub feed lost; reconnecting");
            // Wake-ups may be lost while the feed is down: let every waiter re-read.
            waiters.wake_all();
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_FEED_BACKOFF);
        match subscribe_feed(&client, &pattern).await {
            Ok(feed) => {
                tracing::info!("redis pub/sub feed restored");
                waiters.wake_all();
                pubsub = Some(feed);
            }
            Err(error) => tracing::debug!(%error, "redis pub/sub feed still down"),
        }
    }
}

#[async_trait]
impl Store for RedisStore {
    fn backend(&self) -> &'static str {
        "redis"
    }

    async fn ping(&self) -> Result<(), StoreError> {
        let mut connection = self.connection.clone();
        self.call(redis::cmd("PING").query_async::<()>(&mut connection))
            .await
    }

    async fn get(&self, key: &str) -> Result<Option<Record>, StoreError> {
        let mut connection = self.connection.clone();
        let (version, value): (Option<u64>, Option<Vec<u8>>) = self
            .call(
                redis::cmd("HMGET")
                    .arg(self.key(key))
                    .arg("v")
                    .arg("d")
                    .query_async(&mut connection),
            )
            .await?;
        Ok(version
            .zip(value)
            .map(|(version, value)| Record { value, version }))
    }

    async fn insert(&self, key: &str, value: &[u8], ttl: Ttl) -> Result<bool, StoreError> {
        let mut connection = self.connection.clone();
        let created: i64 = self
            .call(
                self.scripts
                    .insert
                    .key(self.key(key))
                    .arg(value)
                    .arg(ttl_arg(ttl))
                    .invoke_async(&mut connection),
            )
            .await?;
        Ok(created == 1)
    }

    async fn put(&self, key: &str, value: &[u8], ttl: Ttl) -> Result<u64, StoreError> {
        let mut connection = self.connection.clone();
        self.call(
            self.scripts
                .put
                .key(self.key(key))
                .arg(value)
                .arg(ttl_arg(ttl))
                .invoke_async(&mut connection),
        )
        .await
    }

    async fn transition(
        &self,
        key: &str,
        expected: u64,
        value: &[u8],
        ttl: Ttl,
        notify: Option<&str>,
    ) -> Result<u64, StoreError> {
        let mut connection = self.connection.clone();
        let channel = notify
            .map(|channel| self.channel(channel))
            .unwrap_or_default();
        let outcome: i64 = self
            .call(
                self.scripts
                    .transition
                    .key(self.key(key))
                    .arg(expected)
                    .arg(value)
                    .arg(ttl_arg(ttl))
                    .arg(channel)
                    .invoke_async(&mut connection),
            )
            .await?;
        match outcome {
            -1 => Err(StoreError::NotFound),
            -2 => Err(StoreError::Conflict),
            version => Ok(version.unsigned_abs()),
        }
    }

    async fn commit(
        &self,
        key: &str,
        expected: Option<u64>,
        value: &[u8],
        ttl: Ttl,
        notify: Option<&str>,
        creates: &[super::Create],
    ) -> Result<u64, StoreError> {
        let mut connection = self.connection.clone();
        let channel = notify
            .map(|channel| self.channel(channel))
            .unwrap_or_default();
        let mut invocation = self.scripts.commit.key(self.key(key));
        invocation
            .arg(
                expected
                    .map(|version| version.to_string())
                    .unwrap_or_default(),
            )
            .arg(value)
            .arg(ttl_arg(ttl))
            .arg(channel);
        for create in creates {
            invocation
                .key(self.key(&create.key))
                .arg(&create.value)
                .arg(ttl_arg(create.ttl));
        }
        let outcome: i64 = self.call(invocation.invoke_async(&mut connection)).await?;
        match outcome {
            -1 => Err(StoreError::NotFound),
            -2 => Err(StoreError::Conflict),
            version => Ok(version.unsigned_abs()),
        }
    }

    async fn consume(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let mut connection = self.connection.clone();
        self.call(
            self.scripts
                .consume
                .key(self.key(key))
                .invoke_async(&mut connection),
        )
        .await
    }

    async fn delete(&self, key: &str) -> Result<bool, StoreError> {
        let mut connection = self.connection.clone();
        let deleted: u64 = self
            .call(
                redis::cmd("DEL")
                    .arg(self.key(key))
                    .query_async(&mut connection),
            )
            .await?;
        Ok(deleted > 0)
    }

    async fn index_add(
        &self,
        index: &str,
        member: &str,
        ttl: Ttl,
        notify: Option<&str>,
    ) -> Result<(), StoreError> {
        let mut connection = self.connection.clone();
        let channel = notify
            .map(|channel| self.channel(channel))
            .unwrap_or_default();
        self.call(
            self.scripts
                .index_add
                .key(self.key(index))
                .arg(member)
                .arg(ttl_arg(ttl))
                .arg(channel)
                .invoke_async::<()>(&mut connection),
        )
        .await
    }

    async fn index_remove(&self, index: &str, member: &str) -> Result<bool, StoreError> {
        let mut connection = self.connection.clone();
        let removed: u64 = self
            .call(
                redis::cmd("SREM")
                    .arg(self.key(index))
                    .arg(member)
                    .query_async(&mut connection),
            )
            .await?;
        Ok(removed > 0)
    }

    async fn index_members(&self, index: &str) -> Result<Vec<String>, StoreError> {
        let mut connection = self.connection.clone();
        self.call(
            redis::cmd("SMEMBERS")
                .arg(self.key(index))
                .query_async(&mut connection),
        )
        .await
    }

    async fn rate_limit(
        &self,
        key: &str,
        limit: u32,
        window: Duration,
    ) -> Result<bool, StoreError> {
        let mut connection = self.connection.clone();
        let member = crate::ids::random_alphanumeric(16);
        let counted: i64 = self
            .call(
                self.scripts
                    .rate_limit
                    .key(self.key(key))
                    .arg(window.as_millis().max(1).to_string())
                    .arg(limit)
                    .arg(member)
                    .invoke_async(&mut connection),
            )
            .await?;
        Ok(counted == 1)
    }

    async fn rate_count(&self, key: &str, window: Duration) -> Result<u32, StoreError> {
        let mut connection = self.connection.clone();
        self.call(
            self.scripts
                .rate_count
                .key(self.key(key))
                .arg(window.as_millis().max(1).to_string())
                .invoke_async(&mut connection),
        )
        .await
    }

    async fn notify(&self, channel: &str) -> Result<(), StoreError> {
        let mut connection = self.connection.clone();
        self.call(
            redis::cmd("PUBLISH")
                .arg(self.channel(channel))
                .arg("1")
                .query_async::<()>(&mut connection),
        )
        .await
    }

    fn subscribe(&self, channel: &str) -> Subscription {
        self.waiters.subscribe(channel)
    }
}
