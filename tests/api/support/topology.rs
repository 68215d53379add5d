//! Real Redis deployments beyond one server, started on free ports: a Cluster (masters,
//! optionally with a replica each) and a Sentinel-watched master with a replica and three
//! Sentinels. Every process is killed when its handle is dropped.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use assent_core::store::{RedisOptions, RedisStore, Store};
use prometheus::IntCounter;

use super::{RedisServer, free_port, unique};

/// How long a node may be silent before the others fail it over: short, so that the
/// failover tests stay quick.
const NODE_TIMEOUT_MS: &str = "1000";

/// Polls `check` every 50 ms until it holds or `within` passes.
fn wait_until(within: Duration, what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if check() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("timed out waiting for {what}");
}

async fn store_at(url: String, key_prefix: &str) -> Arc<dyn Store> {
    let options = RedisOptions {
        url,
        key_prefix: key_prefix.to_owned(),
        timeout: Duration::from_millis(2000),
        replica_acks: 0,
    };
    let errors = IntCounter::new("test_store_errors", "test").expect("counter");
    Arc::new(
        RedisStore::connect(options, errors)
            .await
            .expect("cannot connect to the test deployment"),
    )
}

/// A Redis Cluster of real `redis-server --cluster-enabled yes` processes.
pub struct RedisCluster {
    nodes: Vec<RedisServer>,
}

impl RedisCluster {
    /// Starts `masters` masters with `replicas` replicas each, creates the cluster with
    /// `redis-cli --cluster create`, and waits until every node reports it healthy.
    pub fn start(masters: usize, replicas: usize) -> Self {
        let nodes: Vec<RedisServer> = (0..masters * (1 + replicas))
            .map(|_| {
                let mut node = RedisServer::reserve();
                let bus = free_port().to_string();
                node.launch_with(&[
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    "nodes.conf",
                    "--cluster-node-timeout",
                    NODE_TIMEOUT_MS,
                    "--cluster-port",
                    &bus,
                ]);
                node
            })
            .collect();
        let addresses: Vec<String> = nodes
            .iter()
            .map(|node| format!("127.0.0.1:{}", node.port()))
            .collect();
        let created = Command::new("redis-cli")
            .args(["--cluster", "create"])
            .args(&addresses)
            .args(["--cluster-replicas", &replicas.to_string(), "--cluster-yes"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("redis-cli is installed with redis-server");
        assert!(created.success(), "redis-cli --cluster create failed");
        let cluster = Self { nodes };
        cluster.wait_healthy(Duration::from_secs(20));
        cluster
    }

    /// `redis-cluster://` with every node as a seed.
    pub fn url(&self) -> String {
        let seeds: Vec<String> = self
            .nodes
            .iter()
            .map(|node| format!("127.0.0.1:{}", node.port()))
            .collect();
        format!("redis-cluster://{}", seeds.join(","))
    }

    /// Waits until every running node reports `cluster_state:ok` and knows a master for
    /// every slot.
    pub fn wait_healthy(&self, within: Duration) {
        wait_until(within, "the cluster to be healthy", || {
            self.nodes
                .iter()
                .filter(|node| node.is_running())
                .all(|node| {
                    let info = cli(node.port(), &["CLUSTER", "INFO"]);
                    info.contains("cluster_state:ok") && info.contains("cluster_slots_ok:16384")
                })
        });
    }

    /// The ports of the nodes that are masters now (as the first running node sees it).
    pub fn master_ports(&self) -> Vec<u16> {
        let node = self
            .nodes
            .iter()
            .find(|node| node.is_running())
            .expect("a running node");
        cli(node.port(), &["CLUSTER", "NODES"])
            .lines()
            .filter(|line| line.contains("master") && !line.contains("fail"))
            .filter_map(|line| {
                let address = line.split(' ').nth(1)?;
                address.split(['@', ':']).nth(1)?.parse().ok()
            })
            .collect()
    }

    /// SIGKILLs the master on `port` and waits until its replica has taken over its slots.
    pub fn kill_master(&mut self, port: u16) {
        let node = self
            .nodes
            .iter_mut()
            .find(|node| node.port() == port)
            .expect("a node on that port");
        node.kill();
        wait_until(Duration::from_secs(20), "a replica to be promoted", || {
            self.nodes
                .iter()
                .filter(|node| node.is_running())
                .all(|node| {
                    let info = cli(node.port(), &["CLUSTER", "INFO"]);
                    info.contains("cluster_state:ok")
                })
                && !self.master_ports().contains(&port)
        });
    }

    /// A store client of this cluster, as an assent instance would have.
    pub async fn store(&self, key_prefix: &str) -> Arc<dyn Store> {
        store_at(self.url(), key_prefix).await
    }
}

/// A master and its replica, in sync.
pub fn replicated() -> (RedisServer, RedisServer) {
    let mut master = RedisServer::reserve();
    // A replica joining is synced at once, not after the default 5 s wait for others.
    master.launch_with(&["--repl-diskless-sync-delay", "0"]);
    let mut replica = RedisServer::reserve();
    replica.launch_with(&["--replicaof", "127.0.0.1", &master.port().to_string()]);
    wait_until(Duration::from_secs(20), "the replica to sync", || {
        cli(replica.port(), &["INFO", "replication"]).contains("master_link_status:up")
    });
    (master, replica)
}

/// A master and a replica watched by three Sentinels.
pub struct RedisSentinel {
    servers: Vec<RedisServer>,
    sentinels: Vec<SentinelProcess>,
}

/// One `redis-server --sentinel`.
struct SentinelProcess {
    port: u16,
    child: Child,
    dir: PathBuf,
}

impl Drop for SentinelProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The master's name the Sentinels monitor.
pub const SENTINEL_MASTER: &str = "assent-main";

impl RedisSentinel {
    /// Starts a master, a replica of it, and three Sentinels (quorum two), and waits
    /// until the Sentinels see both servers.
    pub fn start() -> Self {
        let (master, replica) = replicated();
        let master_port = master.port().to_string();
        let sentinels: Vec<SentinelProcess> = (0..3)
            .map(|_| {
                let port = free_port();
                let dir = std::env::temp_dir().join(unique("assent-sentinel"));
                std::fs::create_dir_all(&dir).expect("a Sentinel directory");
                let config = dir.join("sentinel.conf");
                std::fs::write(
                    &config,
                    format!(
                        "port {port}\nbind 127.0.0.1\nprotected-mode no\ndir {dir}\n\
                         sentinel monitor {SENTINEL_MASTER} 127.0.0.1 {master_port} 2\n\
                         sentinel down-after-milliseconds {SENTINEL_MASTER} {NODE_TIMEOUT_MS}\n\
                         sentinel failover-timeout {SENTINEL_MASTER} 5000\n\
                         sentinel parallel-syncs {SENTINEL_MASTER} 1\n",
                        dir = dir.display(),
                    ),
                )
                .expect("the Sentinel configuration is written");
                let child = Command::new("redis-server")
                    .arg(&config)
                    .arg("--sentinel")
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .expect("redis-server runs as a Sentinel");
                SentinelProcess { port, child, dir }
            })
            .collect();
        let deployment = Self {
            servers: vec![master, replica],
            sentinels,
        };
        wait_until(
            Duration::from_secs(20),
            "the Sentinels to see the replica",
            || {
                deployment.sentinels.iter().all(|sentinel| {
                    cli(sentinel.port, &["SENTINEL", "REPLICAS", SENTINEL_MASTER])
                        .contains(&deployment.servers[1].port().to_string())
                })
            },
        );
        deployment
    }

    /// `redis-sentinel://` with the three Sentinels and the master's name.
    pub fn url(&self) -> String {
        let sentinels: Vec<String> = self
            .sentinels
            .iter()
            .map(|sentinel| format!("127.0.0.1:{}", sentinel.port))
            .collect();
        format!("redis-sentinel://{}/{SENTINEL_MASTER}", sentinels.join(","))
    }

    /// The master's port as the first Sentinel names it.
    pub fn master_port(&self) -> u16 {
        let reply = cli(
            self.sentinels[0].port,
            &["SENTINEL", "GET-MASTER-ADDR-BY-NAME", SENTINEL_MASTER],
        );
        // redis-cli prints the host and the port on two lines.
        reply
            .lines()
            .rev()
            .find_map(|line| line.trim().parse().ok())
            .expect("the Sentinels name a master")
    }

    /// The server (master or replica) on `port`.
    pub fn server(&self, port: u16) -> &RedisServer {
        self.servers
            .iter()
            .find(|server| server.port() == port)
            .expect("a server on that port")
    }

    /// SIGKILLs the master and waits until the Sentinels have promoted the replica.
    pub fn kill_master(&mut self) {
        let old = self.master_port();
        self.servers
            .iter_mut()
            .find(|server| server.port() == old)
            .expect("the master is ours")
            .kill();
        wait_until(
            Duration::from_secs(30),
            "the Sentinels to fail over",
            || self.master_port() != old,
        );
        let new = self.master_port();
        wait_until(Duration::from_secs(10), "the replica to be master", || {
            cli(new, &["ROLE"]).contains("master")
        });
    }

    /// A store client of this deployment, as an assent instance would have.
    pub async fn store(&self, key_prefix: &str) -> Arc<dyn Store> {
        store_at(self.url(), key_prefix).await
    }
}

/// Runs one command with `redis-cli` (which reads any reply shape) and returns what it
/// prints; empty when the server does not answer.
pub fn cli(port: u16, args: &[&str]) -> String {
    Command::new("redis-cli")
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(args)
        .stderr(Stdio::null())
        .output()
        .map(|output| String::from_utf8_lossy(&output.stdout).into_owned())
        .unwrap_or_default()
}
