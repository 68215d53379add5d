//! Which Redis deployment a store URL names: one server, a Cluster, or a master watched by
//! Sentinels.
//!
//! - `redis://[user:password@]host:port[/db]`: one server.
//! - `redis-cluster://[user:password@]host:port,host:port,...`: the Cluster's seed nodes;
//!   the credentials apply to every node.
//! - `redis-sentinel://[user:password@]host:port,host:port,.../<master name>[/db]`: the
//!   Sentinels and the name they monitor; the credentials apply to the master (Sentinels
//!   are reached without them).

use redis::{ConnectionInfo, IntoConnectionInfo, RedisConnectionInfo};

/// A parsed store URL.
#[derive(Clone, Debug)]
pub enum Topology {
    /// One server.
    Single(ConnectionInfo),
    /// A Redis Cluster, by its seed nodes.
    Cluster(Vec<ConnectionInfo>),
    /// A master found through Sentinels.
    Sentinel {
        /// The Sentinels to ask.
        sentinels: Vec<ConnectionInfo>,
        /// The master's name in the Sentinels' configuration.
        master: String,
        /// Database and credentials for the master.
        node: RedisConnectionInfo,
    },
}

/// Why a store URL was refused. Never holds the URL: it may carry a password.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BadUrl(&'static str);

impl Topology {
    /// Parses a `redis://`, `redis-cluster://` or `redis-sentinel://` URL.
    pub fn parse(url: &str) -> Result<Self, BadUrl> {
        if let Some(rest) = url.strip_prefix("redis-cluster://") {
            let (credentials, hosts) = split_credentials(rest);
            let hosts = hosts.trim_end_matches('/');
            let nodes = nodes("redis", credentials, hosts, None)?;
            return Ok(Self::Cluster(nodes));
        }
        if let Some(rest) = url.strip_prefix("redis-sentinel://") {
            let (credentials, rest) = split_credentials(rest);
            let (hosts, path) = rest
                .split_once('/')
                .ok_or(BadUrl("a Sentinel URL ends with /<master name>"))?;
            let (master, db) = match path.split_once('/') {
                Some((master, db)) => (master, Some(db)),
                None => (path, None),
            };
            if master.is_empty() || !master.chars().all(|c| c.is_ascii_graphic()) {
                return Err(BadUrl("a Sentinel URL ends with /<master name>"));
            }
            let sentinels = nodes("redis", None, hosts, None)?;
            let node = single("redis", credentials, "127.0.0.1:6379", db)?.redis;
            return Ok(Self::Sentinel {
                sentinels,
                master: master.to_owned(),
                node,
            });
        }
        if url.starts_with("rediss") {
            return Err(BadUrl(
                "TLS to Redis is not built in: reach it through a TLS tunnel (stunnel, a sidecar)",
            ));
        }
        if url.starts_with("redis://") {
            return url
                .into_connection_info()
                .map(Self::Single)
                .map_err(|_| BadUrl("not a valid redis:// URL"));
        }
        Err(BadUrl(
            "not `memory`, redis://, redis-cluster:// or redis-sentinel://",
        ))
    }

    /// The deployment's kind, for readiness reports and logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Single(_) => "redis",
            Self::Cluster(_) => "redis-cluster",
            Self::Sentinel { .. } => "redis-sentinel",
        }
    }

    /// What may be logged: the kind and the addresses, never a user name or password.
    pub fn redacted(&self) -> String {
        let addresses = |nodes: &[ConnectionInfo]| {
            nodes
                .iter()
                .map(|node| node.addr.to_string())
                .collect::<Vec<_>>()
                .join(",")
        };
        match self {
            Self::Single(node) => format!("redis://{}", node.addr),
            Self::Cluster(nodes) => format!("redis-cluster://{}", addresses(nodes)),
            Self::Sentinel {
                sentinels, master, ..
            } => format!("redis-sentinel://{}/{master}", addresses(sentinels)),
        }
    }
}

/// `user:password@rest` → (`user:password`, `rest`).
fn split_credentials(rest: &str) -> (Option<&str>, &str) {
    match rest.rsplit_once('@') {
        Some((credentials, hosts)) => (Some(credentials), hosts),
        None => (None, rest),
    }
}

fn nodes(
    scheme: &str,
    credentials: Option<&str>,
    hosts: &str,
    db: Option<&str>,
) -> Result<Vec<ConnectionInfo>, BadUrl> {
    let nodes = hosts
        .split(',')
        .map(|host| single(scheme, credentials, host, db))
        .collect::<Result<Vec<_>, _>>()?;
    if nodes.is_empty() {
        return Err(BadUrl("no host:port in the URL"));
    }
    Ok(nodes)
}

fn single(
    scheme: &str,
    credentials: Option<&str>,
    host: &str,
    db: Option<&str>,
) -> Result<ConnectionInfo, BadUrl> {
    if host.is_empty() || host.contains(['/', '?', '#', '@']) {
        return Err(BadUrl("each node is host:port"));
    }
    let userinfo = credentials.map(|c| format!("{c}@")).unwrap_or_default();
    let db = db.map(|db| format!("/{db}")).unwrap_or_default();
    format!("{scheme}://{userinfo}{host}{db}")
        .as_str()
        .into_connection_info()
        .map_err(|_| BadUrl("each node is host:port"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_servers_keep_their_url() {
        let topology = Topology::parse("redis://:hunter2@cache:6380/2").expect("valid");
        assert_eq!(topology.kind(), "redis");
        assert_eq!(topology.redacted(), "redis://cache:6380");
        let Topology::Single(info) = topology else {
            panic!("not single")
        };
        assert_eq!(info.redis.db, 2);
        assert_eq!(info.redis.password.as_deref(), Some("hunter2"));
    }

    #[test]
    fn cluster_urls_list_their_seeds_with_shared_credentials() {
        let topology = Topology::parse("redis-cluster://app:hunter2@10.0.0.1:7000,10.0.0.2:7001/")
            .expect("valid");
        assert_eq!(
            topology.redacted(),
            "redis-cluster://10.0.0.1:7000,10.0.0.2:7001"
        );
        let Topology::Cluster(nodes) = topology else {
            panic!("not a cluster")
        };
        assert_eq!(nodes.len(), 2);
        assert!(
            nodes
                .iter()
                .all(|node| node.redis.password.as_deref() == Some("hunter2")
                    && node.redis.username.as_deref() == Some("app"))
        );
    }

    #[test]
    fn sentinel_urls_name_their_master() {
        let topology = Topology::parse("redis-sentinel://:hunter2@s1:26379,s2:26380/mymaster/3")
            .expect("valid");
        assert_eq!(
            topology.redacted(),
            "redis-sentinel://s1:26379,s2:26380/mymaster"
        );
        let Topology::Sentinel {
            sentinels,
            master,
            node,
        } = topology
        else {
            panic!("not sentinel")
        };
        assert_eq!(master, "mymaster");
        assert_eq!(node.db, 3);
        assert_eq!(node.password.as_deref(), Some("hunter2"));
        assert!(sentinels.iter().all(|s| s.redis.password.is_none()));
    }

    #[test]
    fn malformed_urls_are_refused_without_echoing_them() {
        for url in [
            "redis-cluster://",
            "redis-cluster://a:1,,b:2",
            "redis-cluster://a:notaport",
            "redis-sentinel://s1:26379",
            "redis-sentinel://s1:26379/",
            "redis-sentinel://:hunter2@/m",
            "redis://[::1",
            "rediss://:hunter2@cache",
            "memcached://x",
        ] {
            let error = Topology::parse(url).expect_err(url).to_string();
            assert!(!error.contains("hunter2"), "{error}");
        }
    }
}
