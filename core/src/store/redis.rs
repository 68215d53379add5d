//! The production backend: Redis (one server, a Cluster, or Sentinels' master), shared by
//! every instance. Each transition is one Lua script (one round trip, atomic) on the keys
//! of one slot; wake-ups travel over pub/sub so that a waiter on one instance is woken by
//! a write made on another.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures_util::StreamExt;
use prometheus::IntCounter;
use redis::Script;

use super::connection::{Connection, FeedSource, PerThread};
use super::topology::Topology;
use super::waiters::Waiters;
use super::{
    LogEntry, Record, Snapshot, Store, StoreError, Subscription, Transitioned, Ttl, one_slot,
};

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

// ARGV: expected version ('' inserts), value, ttl, channel.
const COMMIT: &str = r"
local v = redis.call('HGET', KEYS[1], 'v')
if ARGV[1] == '' then
  if v then return -2 end
else
  if not v then return -1 end
  if v ~= ARGV[1] then return -2 end
end
local next = (tonumber(v) or 0) + 1
redis.call('HSET', KEYS[1], 'v', next, 'd', ARGV[2])
apply_ttl(KEYS[1], ARGV[3])
if ARGV[4] ~= '' then redis.call('PUBLISH', ARGV[4], '1') end
return next
";

// A compare-and-set on the version that publishes on ARGV[4] when it writes; a stale
// version answers with the record as it is: {version, value}. ARGV: expected version,
// value, ttl, channel.
const TRANSITION_OR_CURRENT: &str = r"
local v = redis.call('HGET', KEYS[1], 'v')
if not v then return -1 end
if v ~= ARGV[1] then return {v, redis.call('HGET', KEYS[1], 'd')} end
local next = tonumber(v) + 1
redis.call('HSET', KEYS[1], 'v', next, 'd', ARGV[2])
apply_ttl(KEYS[1], ARGV[3])
if ARGV[4] ~= '' then redis.call('PUBLISH', ARGV[4], '1') end
return next
";

// COMMIT or TRANSITION_OR_CURRENT, appending an entry to the list KEYS[2] when written.
// ARGV: expected version ('' inserts), value, ttl, channel, entry, the list's ttl (ms,
// set only when the entry creates the list).
const COMMIT_LOGGED: &str = r"
local v = redis.call('HGET', KEYS[1], 'v')
if ARGV[1] == '' then
  if v then return -2 end
else
  if not v then return -1 end
  if v ~= ARGV[1] then return {v, redis.call('HGET', KEYS[1], 'd')} end
end
local next = (tonumber(v) or 0) + 1
redis.call('HSET', KEYS[1], 'v', next, 'd', ARGV[2])
apply_ttl(KEYS[1], ARGV[3])
if redis.call('RPUSH', KEYS[2], ARGV[5]) == 1 then redis.call('PEXPIRE', KEYS[2], ARGV[6]) end
if ARGV[4] ~= '' then redis.call('PUBLISH', ARGV[4], '1') end
return next
";

// A sorted set of members by time. ARGV: member, its time (ms), the exclusive lower bound
// of what is kept ('(' and a time), how long the set lives (ms).
const TIMELINE_ADD: &str = r"
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return 1
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

// Records (hashes of version `v` and value `d`) first, then sets, all of one slot: one
// atomic read. ARGV: how many of the keys are records.
const SNAPSHOT: &str = r"
local records = tonumber(ARGV[1])
local read = {}
for i, key in ipairs(KEYS) do
  if i <= records then
    read[i] = redis.call('HMGET', key, 'v', 'd')
  else
    read[i] = redis.call('SMEMBERS', key)
  end
end
return read
";

/// A Lua script: sent by its hash, and in full the first time a server lacks it.
struct Lua {
    hash: String,
    code: String,
}

impl Lua {
    fn new(code: String) -> Self {
        Self {
            hash: Script::new(&code).get_hash().to_owned(),
            code,
        }
    }

    /// A call of this script on `key` (the one slot it touches).
    fn on(&self, key: String) -> Call<'_> {
        self.on_slot(key, Vec::new())
    }

    /// A call of this script on `key` and `more` keys of the same slot (the caller has
    /// checked that they share its hash tag).
    fn on_slot(&self, key: String, more: Vec<String>) -> Call<'_> {
        Call {
            lua: self,
            key,
            more,
            args: Vec::new(),
        }
    }
}

/// One script call being built: its keys and arguments.
struct Call<'a> {
    lua: &'a Lua,
    /// The first key: a Cluster routes the call by it.
    key: String,
    /// Further keys, all of the first one's slot.
    more: Vec<String>,
    args: Vec<Vec<u8>>,
}

impl Call<'_> {
    fn arg(mut self, arg: impl redis::ToRedisArgs) -> Self {
        self.args.extend(arg.to_redis_args());
        self
    }

    /// `EVALSHA` (or, with `in_full`, `EVAL`) of the script on its key.
    fn command(&self, in_full: bool) -> redis::Cmd {
        let mut command = if in_full {
            redis::cmd("EVAL").arg(&self.lua.code).to_owned()
        } else {
            redis::cmd("EVALSHA").arg(&self.lua.hash).to_owned()
        };
        command.arg(1 + self.more.len()).arg(&self.key);
        for key in &self.more {
            command.arg(key);
        }
        for arg in &self.args {
            command.arg(arg.as_slice());
        }
        command
    }
}

struct Scripts {
    insert: Lua,
    put: Lua,
    commit: Lua,
    consume: Lua,
    index_add: Lua,
    rate_limit: Lua,
    rate_count: Lua,
    snapshot: Lua,
    transition_or_current: Lua,
    commit_logged: Lua,
    timeline_add: Lua,
}

impl Scripts {
    fn new() -> Self {
        let with_ttl = |body: &str| Lua::new(format!("{APPLY_TTL}{body}"));
        Self {
            insert: with_ttl(INSERT),
            put: with_ttl(PUT),
            commit: with_ttl(COMMIT),
            consume: Lua::new(CONSUME.to_owned()),
            index_add: with_ttl(INDEX_ADD),
            rate_limit: Lua::new(RATE_LIMIT.to_owned()),
            rate_count: Lua::new(RATE_COUNT.to_owned()),
            snapshot: Lua::new(SNAPSHOT.to_owned()),
            transition_or_current: with_ttl(TRANSITION_OR_CURRENT),
            commit_logged: with_ttl(COMMIT_LOGGED),
            timeline_add: Lua::new(TIMELINE_ADD.to_owned()),
        }
    }
}

/// A transition script's answer: `-1` the record is gone, `-2` its version moved on,
/// otherwise the new version.
fn versioned(outcome: i64) -> Result<u64, StoreError> {
    match outcome {
        -1 => Err(StoreError::NotFound),
        -2 => Err(StoreError::Conflict),
        version => Ok(version.unsigned_abs()),
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
    /// A `redis://`, `redis-cluster://` or `redis-sentinel://` URL.
    pub url: String,
    /// Put before every key and channel, so that several deployments (or tests) can share
    /// one Redis. Must not contain `{` or `}`: hash tags belong to the keys.
    pub key_prefix: String,
    /// Upper bound on any one store call, connection attempts included.
    pub timeout: Duration,
    /// Replicas that must acknowledge a write (`WAIT`) before it counts as done; 0 does
    /// not wait.
    pub replica_acks: u32,
}

impl std::fmt::Debug for RedisOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisOptions")
            .field("url", &"(redacted)")
            .field("key_prefix", &self.key_prefix)
            .field("timeout", &self.timeout)
            .field("replica_acks", &self.replica_acks)
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

/// Redis through a reconnecting connection.
pub struct RedisStore {
    connection: Connection,
    /// Each worker thread's own connection (one server only).
    per_thread: Option<Arc<PerThread>>,
    kind: &'static str,
    scripts: Scripts,
    options: RedisOptions,
    waiters: Arc<Waiters>,
    errors: IntCounter,
    /// The fewest replicas any master has connected, as last counted (see
    /// [`RedisStore::send`]).
    replicas: Arc<std::sync::atomic::AtomicU32>,
    _feed: FeedTask,
    _replica_count: Option<FeedTask>,
}

impl RedisStore {
    /// Connects, subscribes to the wake-up feed, and keeps both alive across outages.
    /// `errors` counts every failed store call.
    pub async fn connect(options: RedisOptions, errors: IntCounter) -> Result<Self, StoreError> {
        let topology = Topology::parse(&options.url)
            .map_err(|error| StoreError::Unavailable(format!("bad Redis URL: {error}")))?;
        // The fewest replicas a master has, counted before the first write and kept
        // fresh: a failover leaves a master with none, and a `WAIT` for one would hold up
        // its connection.
        let replicas = Arc::new(std::sync::atomic::AtomicU32::new(0));
        let (connection, source, per_thread) = bounded(
            options.timeout,
            Connection::open(
                &topology,
                options.timeout,
                MAX_RECONNECT_DELAY,
                Arc::clone(&replicas),
            ),
        )
        .await
        .map_err(|error| StoreError::Unavailable(format!("cannot reach Redis: {error}")))?;

        let waiters = Arc::new(Waiters::default());
        let pattern = format!("{}ch:*", options.key_prefix);
        let first = bounded(options.timeout, subscribe_feed(&source, 0, &pattern))
            .await
            .map_err(|error| StoreError::Unavailable(format!("cannot subscribe: {error}")))?;
        let feed = tokio::spawn(run_feed(
            source,
            pattern,
            options.key_prefix.len() + "ch:".len(),
            Arc::clone(&waiters),
            first,
        ));

        let replica_count = (options.replica_acks > 0).then(|| {
            FeedTask(tokio::spawn(count_replicas(
                connection.clone(),
                Arc::clone(&replicas),
                options.timeout,
            )))
        });
        if options.replica_acks > 0 {
            let count = fewest_replicas(&connection, options.timeout).await;
            replicas.store(count.unwrap_or(0), std::sync::atomic::Ordering::Relaxed);
        }
        Ok(Self {
            connection,
            per_thread,
            kind: topology.kind(),
            scripts: Scripts::new(),
            options,
            waiters,
            errors,
            replicas,
            _feed: FeedTask(feed),
            _replica_count: replica_count,
        })
    }

    fn key(&self, key: &str) -> String {
        format!("{}{key}", self.options.key_prefix)
    }

    /// The connection to send on: this thread's own where it has one, else the shared.
    fn connection(&self) -> Connection {
        self.per_thread
            .as_ref()
            .and_then(PerThread::local)
            .unwrap_or_else(|| self.connection.clone())
    }

    fn channel(&self, channel: &str) -> String {
        format!("{}ch:{channel}", self.options.key_prefix)
    }

    /// Runs a script on its key within the timeout (see [`Self::send`] for `durable`).
    async fn eval<T: redis::FromRedisValue>(
        &self,
        call: Call<'_>,
        durable: bool,
    ) -> Result<T, StoreError> {
        match self.send(&call.key, call.command(false), durable).await {
            // The server lost its scripts (a restart, a failover): send it in full.
            Err(StoreError::Unavailable(reason)) if reason.starts_with("NOSCRIPT") => {
                self.send(&call.key, call.command(true), durable).await
            }
            answer => answer,
        }
    }

    /// Sends one command on `key` within the timeout. A `durable` write is acknowledged by
    /// `replica_acks` replicas (`WAIT`, pipelined in the same round trip and, in a
    /// Cluster, sent to the key's master) before it counts as done: what a failover loses
    /// was never reported as done.
    ///
    /// A master with no replica connected at all (the survivor of a failover, until its
    /// old master returns as a replica) has no replica a failover could promote: writes
    /// wait for no more replicas than the fewest any master has, counted every half
    /// second (a `WAIT` no replica can answer would hold up every command behind it on
    /// the shared connection).
    async fn send<T: redis::FromRedisValue>(
        &self,
        key: &str,
        command: redis::Cmd,
        durable: bool,
    ) -> Result<T, StoreError> {
        let acks = if durable {
            self.options
                .replica_acks
                .min(self.replicas.load(std::sync::atomic::Ordering::Relaxed))
        } else {
            0
        };
        let wait_ms = (self.options.timeout.as_millis() / 2).max(1) as u64;
        let mut connection = self.connection();
        let answer = if acks == 0 {
            bounded_raw(self.options.timeout, command.query_async(&mut connection))
                .await
                .map(|value| (value, 0))
        } else {
            let mut pipeline = redis::pipe();
            pipeline
                .add_command(command)
                .cmd("WAIT")
                .arg(acks)
                .arg(wait_ms);
            bounded_raw(self.options.timeout, pipeline.query_async(&mut connection)).await
        };
        match answer {
            // Not a failure of the store: the caller resends the script in full.
            Err(Some(error)) if error.kind() == redis::ErrorKind::NoScriptError => Err(
                StoreError::Unavailable(format!("NOSCRIPT {}", error.detail().unwrap_or(""))),
            ),
            Err(error) => Err(self.failed(error.map_or_else(
                || format!("no answer within {:?}", self.options.timeout),
                |error| error.to_string(),
            ))),
            Ok((value, acked)) if acked < acks => {
                // Its master may have just lost its last replica: count again, and
                // accept the write if there is none to lose it to.
                if self.replicas_of(key).await == Some(0) {
                    // The fewest is now 0 (the periodic count raises it again once every
                    // master has a replica; it may not reach a dead master meanwhile).
                    self.replicas.store(0, std::sync::atomic::Ordering::Relaxed);
                    tracing::warn!("a Redis master has no replica: writes are not acknowledged");
                    return Ok(value);
                }
                Err(self.failed(format!(
                    "{acked} of {acks} replicas acknowledged the write within {wait_ms} ms"
                )))
            }
            Ok((value, _)) => Ok(value),
        }
    }

    /// How many replicas the master of `key` has connected (`INFO replication`, sent with
    /// a command on the key so that a Cluster routes it to that master).
    async fn replicas_of(&self, key: &str) -> Option<u32> {
        let mut pipeline = redis::pipe();
        pipeline
            .cmd("EXISTS")
            .arg(key)
            .ignore()
            .cmd("INFO")
            .arg("replication");
        let mut connection = self.connection();
        let (info,): (String,) =
            bounded_raw(self.options.timeout, pipeline.query_async(&mut connection))
                .await
                .ok()?;
        info.lines()
            .find_map(|line| line.strip_prefix("connected_slaves:"))
            .and_then(|count| count.trim().parse().ok())
    }

    fn failed(&self, error: String) -> StoreError {
        self.errors.inc();
        tracing::warn!(%error, "redis call failed");
        StoreError::Unavailable(error)
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

/// As [`bounded`], keeping the error (`None`: no answer in time).
async fn bounded_raw<T>(
    timeout: Duration,
    fut: impl Future<Output = redis::RedisResult<T>>,
) -> Result<T, Option<redis::RedisError>> {
    match tokio::time::timeout(timeout, fut).await {
        Ok(answer) => answer.map_err(Some),
        Err(_) => Err(None),
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

async fn subscribe_feed(
    source: &FeedSource,
    attempt: usize,
    pattern: &str,
) -> redis::RedisResult<redis::aio::PubSub> {
    let mut pubsub = source.client(attempt).await?.get_async_pubsub().await?;
    pubsub.psubscribe(pattern).await?;
    Ok(pubsub)
}

/// Delivers pub/sub messages to local waiters; reconnects with backoff when the feed drops.
async fn run_feed(
    source: FeedSource,
    pattern: String,
    name_offset: usize,
    waiters: Arc<Waiters>,
    first: redis::aio::PubSub,
) {
    let mut pubsub = Some(first);
    let mut backoff = Duration::from_millis(50);
    let mut attempt = 0;
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
        // In a Cluster, the next try goes to the next node.
        attempt += 1;
        match subscribe_feed(&source, attempt, &pattern).await {
            Ok(feed) => {
                tracing::info!("redis pub/sub feed restored");
                waiters.wake_all();
                pubsub = Some(feed);
            }
            Err(error) => tracing::debug!(%error, "redis pub/sub feed still down"),
        }
    }
}

/// How often the replicas are counted when writes wait for them.
const REPLICA_COUNT_EVERY: Duration = Duration::from_millis(500);

/// Keeps `replicas` at the fewest replicas any master has connected.
async fn count_replicas(
    connection: Connection,
    replicas: Arc<std::sync::atomic::AtomicU32>,
    timeout: Duration,
) {
    loop {
        tokio::time::sleep(REPLICA_COUNT_EVERY).await;
        if let Some(count) = fewest_replicas(&connection, timeout).await {
            let before = replicas.swap(count, std::sync::atomic::Ordering::Relaxed);
            if count == 0 && before > 0 {
                tracing::warn!(
                    "a Redis master has no replica: writes on it are not acknowledged by one"
                );
            }
        }
    }
}

/// The fewest replicas any master has connected (`INFO replication` on every master);
/// `None` when a master does not answer.
async fn fewest_replicas(connection: &Connection, timeout: Duration) -> Option<u32> {
    let mut info = redis::cmd("INFO");
    info.arg("replication");
    let answers: Vec<String> = match connection.clone() {
        Connection::Cluster(mut cluster) => {
            use redis::cluster_routing::{MultipleNodeRoutingInfo, RoutingInfo};
            let routing = RoutingInfo::MultiNode((MultipleNodeRoutingInfo::AllMasters, None));
            let value = bounded_raw(timeout, cluster.route_command(&info, routing))
                .await
                .ok()?;
            // One answer per master, by its address.
            let redis::Value::Map(by_node) = value else {
                return None;
            };
            by_node
                .iter()
                .map(|(_, answer)| redis::from_redis_value(answer).ok())
                .collect::<Option<_>>()?
        }
        mut single => vec![
            bounded_raw(timeout, info.query_async(&mut single))
                .await
                .ok()?,
        ],
    };
    answers
        .iter()
        .map(|answer| {
            answer
                .lines()
                .find_map(|line| line.strip_prefix("connected_slaves:"))
                .and_then(|count| count.trim().parse().ok())
        })
        .collect::<Option<Vec<u32>>>()?
        .into_iter()
        .min()
}

#[async_trait]
impl Store for RedisStore {
    fn backend(&self) -> &'static str {
        self.kind
    }

    async fn ping(&self) -> Result<(), StoreError> {
        let mut connection = self.connection();
        self.call(redis::cmd("PING").query_async::<()>(&mut connection))
            .await
    }

    async fn get(&self, key: &str) -> Result<Option<Record>, StoreError> {
        let mut connection = self.connection();
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
        let call = self.scripts.insert.on(self.key(key));
        let created: i64 = self.eval(call.arg(value).arg(ttl_arg(ttl)), true).await?;
        Ok(created == 1)
    }

    async fn spend(&self, key: &str, ttl: Duration) -> Result<bool, StoreError> {
        // One command, its TTL included: no script, no separate PEXPIRE. Durable: a
        // replay marker a failover forgot would let the replay through.
        let mut command = redis::cmd("SET");
        command
            .arg(self.key(key))
            .arg("")
            .arg("NX")
            .arg("PX")
            .arg(ttl.as_millis().max(1) as u64);
        let set: Option<String> = self.send(&self.key(key), command, true).await?;
        Ok(set.is_some())
    }

    async fn put(&self, key: &str, value: &[u8], ttl: Ttl) -> Result<u64, StoreError> {
        let call = self.scripts.put.on(self.key(key));
        self.eval(call.arg(value).arg(ttl_arg(ttl)), true).await
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
        let channel = notify
            .map(|channel| self.channel(channel))
            .unwrap_or_default();
        let expected = expected
            .map(|version| version.to_string())
            .unwrap_or_default();
        let call = self.scripts.commit.on(self.key(key));
        let call = call.arg(expected).arg(value).arg(ttl_arg(ttl)).arg(channel);
        versioned(self.eval(call, true).await?)
    }

    async fn consume(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        // Durable: a consumed record must stay consumed across a failover.
        self.eval(self.scripts.consume.on(self.key(key)), true)
            .await
    }

    async fn delete(&self, key: &str) -> Result<bool, StoreError> {
        let mut connection = self.connection();
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
        let channel = notify
            .map(|channel| self.channel(channel))
            .unwrap_or_default();
        let call = self.scripts.index_add.on(self.key(index));
        self.eval(call.arg(member).arg(ttl_arg(ttl)).arg(channel), true)
            .await
    }

    async fn index_remove(&self, index: &str, member: &str) -> Result<bool, StoreError> {
        let mut connection = self.connection();
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
        let mut connection = self.connection();
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
        let member = crate::ids::random_alphanumeric(16);
        let call = self.scripts.rate_limit.on(self.key(key));
        let call = call
            .arg(window.as_millis().max(1).to_string())
            .arg(limit)
            .arg(member);
        // Not durable: a failover that forgets a few counted events only loosens a limit.
        let counted: i64 = self.eval(call, false).await?;
        Ok(counted == 1)
    }

    async fn rate_count(&self, key: &str, window: Duration) -> Result<u32, StoreError> {
        let call = self.scripts.rate_count.on(self.key(key));
        self.eval(call.arg(window.as_millis().max(1).to_string()), false)
            .await
    }

    async fn notify(&self, channel: &str) -> Result<(), StoreError> {
        let mut connection = self.connection();
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
    async fn snapshot(&self, records: &[&str], indexes: &[&str]) -> Result<Snapshot, StoreError> {
        one_slot(records.iter().chain(indexes).copied())?;
        let mut keys = records.iter().chain(indexes).map(|key| self.key(key));
        let Some(first) = keys.next() else {
            return Ok(Snapshot::default());
        };
        let call = self.scripts.snapshot.on_slot(first, keys.collect());
        let read: Vec<redis::Value> = self.eval(call.arg(records.len()), false).await?;
        if read.len() != records.len() + indexes.len() {
            return Err(self.failed(format!(
                "a snapshot of {} keys answered {}",
                records.len() + indexes.len(),
                read.len()
            )));
        }
        let (record_values, index_values) = read.split_at(records.len());
        let malformed = |error: redis::RedisError| self.failed(error.to_string());
        let records = record_values
            .iter()
            .map(|value| {
                let (version, value): (Option<u64>, Option<Vec<u8>>) =
                    redis::from_redis_value(value).map_err(malformed)?;
                Ok(version
                    .zip(value)
                    .map(|(version, value)| Record { value, version }))
            })
            .collect::<Result<_, StoreError>>()?;
        let indexes = index_values
            .iter()
            .map(|value| redis::from_redis_value(value).map_err(malformed))
            .collect::<Result<_, StoreError>>()?;
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
        let channel = notify
            .map(|channel| self.channel(channel))
            .unwrap_or_default();
        let call = self.scripts.transition_or_current.on(self.key(key));
        let call = call.arg(expected).arg(value).arg(ttl_arg(ttl)).arg(channel);
        self.transitioned(self.eval(call, true).await?)
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
        let channel = notify
            .map(|channel| self.channel(channel))
            .unwrap_or_default();
        let expected = expected
            .map(|version| version.to_string())
            .unwrap_or_default();
        let call = self
            .scripts
            .commit_logged
            .on_slot(self.key(key), vec![self.key(log.key)]);
        let call = call
            .arg(expected)
            .arg(value)
            .arg(ttl_arg(ttl))
            .arg(channel)
            .arg(log.entry)
            .arg(log.ttl.as_millis().max(1).to_string());
        self.transitioned(self.eval(call, true).await?)
    }

    async fn log_entries(&self, key: &str) -> Result<Vec<Vec<u8>>, StoreError> {
        let mut connection = self.connection();
        self.call(
            redis::cmd("LRANGE")
                .arg(self.key(key))
                .arg(0)
                .arg(-1)
                .query_async(&mut connection),
        )
        .await
    }

    async fn timeline_add(
        &self,
        key: &str,
        member: &str,
        at_ms: u64,
        keep: Duration,
    ) -> Result<(), StoreError> {
        let keep_ms = u64::try_from(keep.as_millis()).unwrap_or(u64::MAX).max(1);
        let call = self.scripts.timeline_add.on(self.key(key));
        let call = call
            .arg(member)
            .arg(at_ms)
            .arg(format!("({}", at_ms.saturating_sub(keep_ms)))
            .arg(keep_ms);
        // Not durable: an index entry a failover forgets only hides a flow from the
        // user's listing; its events stay readable by the flow's id.
        let _: i64 = self.eval(call, false).await?;
        Ok(())
    }

    async fn timeline_page(
        &self,
        key: &str,
        before_ms: Option<u64>,
        limit: usize,
    ) -> Result<Vec<(String, u64)>, StoreError> {
        let newest = before_ms.map_or_else(|| "+inf".to_owned(), |before| format!("({before}"));
        let mut connection = self.connection();
        let page: Vec<(String, f64)> = self
            .call(
                redis::cmd("ZREVRANGEBYSCORE")
                    .arg(self.key(key))
                    .arg(newest)
                    .arg("-inf")
                    .arg("WITHSCORES")
                    .arg("LIMIT")
                    .arg(0)
                    .arg(limit)
                    .query_async(&mut connection),
            )
            .await?;
        Ok(page
            .into_iter()
            .map(|(member, at)| (member, at.max(0.0) as u64))
            .collect())
    }
}

impl RedisStore {
    /// A conditional write's answer: the new version, or the current record when the
    /// version had moved on.
    fn transitioned(&self, answer: redis::Value) -> Result<Transitioned, StoreError> {
        match answer {
            redis::Value::Int(outcome) => versioned(outcome).map(Transitioned::Written),
            redis::Value::Array(current) => match current.as_slice() {
                [version, redis::Value::BulkString(value)] => {
                    let version: u64 = redis::from_redis_value(version)
                        .map_err(|error| self.failed(format!("bad version: {error}")))?;
                    Ok(Transitioned::Stale(Record {
                        value: value.clone(),
                        version,
                    }))
                }
                // A version without a value: not a record this store wrote.
                _ => Err(StoreError::NotFound),
            },
            other => Err(self.failed(format!("unexpected script answer: {other:?}"))),
        }
    }
}
