//! The connection the Redis store sends its commands and scripts through, whatever the
//! deployment: one server (a reconnecting manager), a Cluster (the `redis` crate's async
//! cluster client, which follows slot moves and failovers), or a master found through
//! Sentinels (re-resolved when it stops answering as a master). Also where the pub/sub
//! feed subscribes in each deployment.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock, Weak};
use std::thread::ThreadId;
use std::time::{Duration, Instant};

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClientBuilder;
use redis::cluster_async::ClusterConnection;
use redis::sentinel::{SentinelClient, SentinelNodeConnectionInfo, SentinelServerType};
use redis::{Client, Cmd, ConnectionInfo, RedisFuture, RedisResult, Value};

use super::topology::Topology;

/// How often the Sentinels are asked who the master is, besides after every failure: a
/// demoted master that comes back answers reads as a replica without failing them.
const SENTINEL_CHECK: Duration = Duration::from_secs(1);

/// Commands go to one server, a Cluster, or the master the Sentinels name.
#[derive(Clone)]
pub(super) enum Connection {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
    Sentinel(Arc<SentinelMaster>),
}

impl Connection {
    /// Connects to the deployment `topology` names. `timeout` bounds each connection
    /// attempt and each answer; `max_delay` is the longest pause between reconnections.
    /// `replicas` is the store's count of the fewest replicas a master has: a Sentinel
    /// connection sets it for a new master before any write reaches it.
    pub(super) async fn open(
        topology: &Topology,
        timeout: Duration,
        max_delay: Duration,
        replicas: Arc<AtomicU32>,
    ) -> RedisResult<(Self, FeedSource, Option<Arc<PerThread>>)> {
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(timeout)
            .set_response_timeout(timeout)
            .set_max_delay(max_delay.as_millis() as u64);
        match topology {
            Topology::Single(info) => {
                let client = Client::open(info.clone())?;
                let manager = client
                    .get_connection_manager_with_config(config.clone())
                    .await?;
                let per_thread = PerThread::new(client.clone(), config, timeout);
                Ok((
                    Self::Single(manager),
                    FeedSource::Single(client),
                    Some(per_thread),
                ))
            }
            Topology::Cluster(nodes) => {
                let connection = ClusterClientBuilder::new(nodes.clone())
                    .connection_timeout(timeout)
                    .response_timeout(timeout)
                    // A request during a failover fails fast (503) rather than retrying
                    // past its deadline; the client keeps refreshing its slot map.
                    .retries(2)
                    .min_retry_wait(50)
                    .max_retry_wait(max_delay.as_millis() as u64)
                    .build()?
                    .get_async_connection()
                    .await?;
                Ok((
                    Self::Cluster(connection),
                    FeedSource::Cluster(nodes.clone()),
                    None,
                ))
            }
            Topology::Sentinel {
                sentinels,
                master,
                node,
            } => {
                let client = SentinelClient::build(
                    sentinels.clone(),
                    master.clone(),
                    Some(SentinelNodeConnectionInfo {
                        tls_mode: None,
                        redis_connection_info: Some(node.clone()),
                    }),
                    SentinelServerType::Master,
                )?;
                let master = SentinelMaster::connect(client, config, replicas).await?;
                Ok((
                    Self::Sentinel(Arc::clone(&master)),
                    FeedSource::Sentinel(master),
                    None,
                ))
            }
        }
    }
}

impl ConnectionLike for Connection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Self::Single(connection) => connection.req_packed_command(cmd),
            Self::Cluster(connection) => connection.req_packed_command(cmd),
            Self::Sentinel(master) => Box::pin(async move {
                let mut connection = master.current();
                let answer = connection.req_packed_command(cmd).await;
                master.check_after(&answer);
                answer
            }),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a redis::Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Self::Single(connection) => connection.req_packed_commands(pipeline, offset, count),
            Self::Cluster(connection) => connection.req_packed_commands(pipeline, offset, count),
            Self::Sentinel(master) => Box::pin(async move {
                let mut connection = master.current();
                let answer = connection
                    .req_packed_commands(pipeline, offset, count)
                    .await;
                master.check_after(&answer);
                answer
            }),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::Single(connection) => connection.get_db(),
            Self::Cluster(connection) => connection.get_db(),
            Self::Sentinel(master) => master.current().get_db(),
        }
    }
}

/// How long a thread whose connection could not be opened uses the shared one before it
/// tries again (Redis down: one attempt per thread and pause, not one per request).
const PER_THREAD_RETRY: Duration = Duration::from_secs(1);

/// One connection to a single server for each thread that runs its own single-threaded
/// runtime (each actix worker), opened on that thread: its driver task then runs there, so
/// a reply wakes the request on its own thread instead of crossing from the thread of a
/// shared connection's driver. Each reconnects by itself, as the shared one does. Cluster
/// and Sentinel deployments keep the shared connection: their clients route and follow
/// failovers themselves, and one of each per thread would multiply that work.
pub(super) struct PerThread {
    client: Client,
    config: ConnectionManagerConfig,
    timeout: Duration,
    connections: Mutex<HashMap<ThreadId, Slot>>,
}

/// A thread's own connection, or why it has none yet.
enum Slot {
    Opening,
    Open(ConnectionManager),
    Failed(Instant),
}

impl PerThread {
    fn new(client: Client, config: ConnectionManagerConfig, timeout: Duration) -> Arc<Self> {
        Arc::new(Self {
            client,
            config,
            timeout,
            connections: Mutex::new(HashMap::new()),
        })
    }

    /// This thread's own connection, if it runs a single-threaded runtime and the
    /// connection is open; otherwise `None` (the caller uses the shared one), and the
    /// first such call on the thread starts opening it there.
    pub(super) fn local(self: &Arc<Self>) -> Option<Connection> {
        let runtime = tokio::runtime::Handle::try_current().ok()?;
        // On a multi-threaded runtime the driver could run on any of its threads.
        if runtime.runtime_flavor() != tokio::runtime::RuntimeFlavor::CurrentThread {
            return None;
        }
        let thread = std::thread::current().id();
        let mut connections = self
            .connections
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        match connections.get(&thread) {
            Some(Slot::Open(connection)) => return Some(Connection::Single(connection.clone())),
            Some(Slot::Opening) => return None,
            Some(Slot::Failed(at)) if at.elapsed() < PER_THREAD_RETRY => return None,
            Some(Slot::Failed(_)) | None => {}
        }
        connections.insert(thread, Slot::Opening);
        drop(connections);
        // A current-thread runtime runs what it spawns on its own thread: the manager's
        // driver lands here.
        runtime.spawn(open_local(Arc::downgrade(self), thread));
        None
    }
}

/// Opens `thread`'s connection (on that thread's runtime) and files it.
async fn open_local(per_thread: Weak<PerThread>, thread: ThreadId) {
    let Some(owner) = per_thread.upgrade() else {
        return;
    };
    let (client, config, timeout) = (owner.client.clone(), owner.config.clone(), owner.timeout);
    // Not held while connecting: the store may go away meanwhile.
    drop(owner);
    let opened =
        tokio::time::timeout(timeout, client.get_connection_manager_with_config(config)).await;
    let slot = match opened {
        Ok(Ok(connection)) => Slot::Open(connection),
        Ok(Err(error)) => {
            tracing::debug!(%error, "could not open this thread's Redis connection");
            Slot::Failed(Instant::now())
        }
        Err(_) => Slot::Failed(Instant::now()),
    };
    if let Some(owner) = per_thread.upgrade() {
        owner
            .connections
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(thread, slot);
    }
}

/// The master the Sentinels name, and a connection to it that is replaced when they name
/// another.
pub(super) struct SentinelMaster {
    sentinels: tokio::sync::Mutex<SentinelClient>,
    current: RwLock<(ConnectionInfo, ConnectionManager)>,
    config: ConnectionManagerConfig,
    checking: AtomicBool,
    replicas: Arc<AtomicU32>,
}

impl SentinelMaster {
    async fn connect(
        mut sentinels: SentinelClient,
        config: ConnectionManagerConfig,
        replicas: Arc<AtomicU32>,
    ) -> RedisResult<Arc<Self>> {
        let client = sentinels.async_get_client().await?;
        let info = client.get_connection_info().clone();
        let manager = client
            .get_connection_manager_with_config(config.clone())
            .await?;
        let master = Arc::new(Self {
            sentinels: tokio::sync::Mutex::new(sentinels),
            current: RwLock::new((info, manager)),
            config,
            checking: AtomicBool::new(false),
            replicas,
        });
        tokio::spawn(watch(Arc::downgrade(&master)));
        Ok(master)
    }

    fn current(&self) -> ConnectionManager {
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .1
            .clone()
    }

    /// The master's address as last resolved.
    fn address(&self) -> ConnectionInfo {
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .0
            .clone()
    }

    /// After a failure that a failover explains (the master gone, or demoted and refusing
    /// writes), asks the Sentinels again, in the background.
    fn check_after<T>(self: &Arc<Self>, answer: &RedisResult<T>) {
        if let Err(error) = answer
            && (error.is_io_error()
                || error.is_connection_refusal()
                || error.is_connection_dropped()
                || error.is_timeout()
                || error.kind() == redis::ErrorKind::ReadOnly)
        {
            let master = Arc::clone(self);
            tokio::spawn(async move { master.check().await });
        }
    }

    /// Asks the Sentinels who the master is and, if it moved, connects to the new one.
    async fn check(&self) {
        if self.checking.swap(true, Ordering::AcqRel) {
            return;
        }
        if let Err(error) = self.follow().await {
            tracing::debug!(%error, "could not ask the Sentinels for the master");
        }
        self.checking.store(false, Ordering::Release);
    }

    async fn follow(&self) -> RedisResult<()> {
        let client = self.sentinels.lock().await.async_get_client().await?;
        let info = client.get_connection_info().clone();
        if info.addr == self.address().addr {
            return Ok(());
        }
        let mut manager = client
            .get_connection_manager_with_config(self.config.clone())
            .await?;
        // A promoted replica starts with no replica of its own: writes must not wait for
        // one there (a `WAIT` nobody answers holds up the whole connection).
        let replication: String = redis::cmd("INFO")
            .arg("replication")
            .query_async(&mut manager)
            .await?;
        let count = replication
            .lines()
            .find_map(|line| line.strip_prefix("connected_slaves:"))
            .and_then(|count| count.trim().parse().ok())
            .unwrap_or(0);
        self.replicas.fetch_min(count, Ordering::AcqRel);
        tracing::warn!(master = %info.addr, "the Sentinels name a new Redis master; following it");
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = (info, manager);
        Ok(())
    }

    /// A client for the master as the Sentinels name it now.
    async fn client(&self) -> RedisResult<Client> {
        self.follow().await?;
        Client::open(self.address())
    }
}

/// Checks the master periodically for as long as the store holds it.
async fn watch(master: std::sync::Weak<SentinelMaster>) {
    loop {
        tokio::time::sleep(SENTINEL_CHECK).await;
        let Some(master) = master.upgrade() else {
            return;
        };
        master.check().await;
    }
}

/// Where the pub/sub feed subscribes. In a Cluster, `PUBLISH` reaches every node, so any
/// one node serves; the feed moves to the next when its node goes.
pub(super) enum FeedSource {
    Single(Client),
    Cluster(Vec<ConnectionInfo>),
    Sentinel(Arc<SentinelMaster>),
}

impl FeedSource {
    /// A client for the node to subscribe to on the `attempt`-th try.
    pub(super) async fn client(&self, attempt: usize) -> RedisResult<Client> {
        match self {
            Self::Single(client) => Ok(client.clone()),
            Self::Cluster(nodes) => Client::open(nodes[attempt % nodes.len()].clone()),
            Self::Sentinel(master) => master.client().await,
        }
    }
}
