//! The store conformance suite: the same checks, unchanged, against the memory backend
//! and against a real `redis-server`.

use std::sync::Arc;
use std::time::Duration;

use assent_core::store::{LogEntry, Record, Snapshot, Store, StoreError, Transitioned, Ttl};

use crate::support::topology::RedisCluster;
use crate::support::{RedisServer, memory_store, unique};

/// Two handles on one shared state: for memory the same store twice, for Redis two
/// separate clients (as two assent instances would be).
struct Pair {
    first: Arc<dyn Store>,
    second: Arc<dyn Store>,
    _redis: Option<RedisServer>,
    _cluster: Option<RedisCluster>,
}

async fn memory_pair() -> Pair {
    let store = memory_store();
    Pair {
        first: Arc::clone(&store),
        second: store,
        _redis: None,
        _cluster: None,
    }
}

async fn redis_pair() -> Pair {
    let redis = RedisServer::start();
    let prefix = format!("{}:", unique("conf"));
    Pair {
        first: redis.store(&prefix).await,
        second: redis.store(&prefix).await,
        _redis: Some(redis),
        _cluster: None,
    }
}

/// Three masters: the test's keys spread over their slots, so the checks cross nodes.
async fn cluster_pair() -> Pair {
    let cluster = RedisCluster::start(3, 0);
    let prefix = format!("{}:", unique("conf"));
    Pair {
        first: cluster.store(&prefix).await,
        second: cluster.store(&prefix).await,
        _redis: None,
        _cluster: Some(cluster),
    }
}

macro_rules! conformance {
    ($($check:ident),* $(,)?) => {
        mod memory {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $check() {
                super::$check(super::memory_pair().await).await;
            })*
        }
        mod redis {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $check() {
                super::$check(super::redis_pair().await).await;
            })*
        }
        mod cluster {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $check() {
                super::$check(super::cluster_pair().await).await;
            })*
        }
    };
}

conformance!(
    records_carry_versions,
    insert_creates_only_once,
    records_expire,
    transitions_keep_or_reset_ttl,
    transition_is_conditional,
    racing_transitions_have_one_winner,
    consume_is_once_under_concurrency,
    indexes_hold_members,
    indexes_expire,
    waiter_is_woken_by_a_write_through_a_second_client,
    waiter_without_write_times_out,
    notify_wakes_waiters,
    index_add_wakes_waiters,
    rate_limit_counts_up_to_the_limit_across_clients,
    rate_limit_window_slides,
    snapshot_reads_records_and_sets_of_one_slot,
    snapshot_is_one_atomic_step,
    a_stale_transition_answers_with_the_current_record,
    a_logged_commit_appends_exactly_when_it_writes,
    a_log_outlives_its_record_by_its_own_ttl,
    timelines_page_newest_first_and_drop_what_is_too_old,
);

async fn rate_limit_counts_up_to_the_limit_across_clients(pair: Pair) {
    let window = Duration::from_secs(60);
    let attempts = (0..10).map(|i| {
        let store = if i % 2 == 0 {
            Arc::clone(&pair.first)
        } else {
            Arc::clone(&pair.second)
        };
        tokio::spawn(async move { store.rate_limit("rl:{u:a}", 3, window).await.unwrap() })
    });
    let counted = futures_util::future::join_all(attempts)
        .await
        .into_iter()
        .filter(|joined| *joined.as_ref().unwrap())
        .count();
    assert_eq!(counted, 3, "exactly the limit is counted, whoever asks");
    assert!(
        pair.first.rate_limit("rl:{u:b}", 3, window).await.unwrap(),
        "another key has its own window"
    );
}

async fn rate_limit_window_slides(pair: Pair) {
    let window = Duration::from_millis(400);
    assert!(pair.first.rate_limit("rl:{u:s}", 1, window).await.unwrap());
    assert!(!pair.second.rate_limit("rl:{u:s}", 1, window).await.unwrap());
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(
        pair.second.rate_limit("rl:{u:s}", 1, window).await.unwrap(),
        "an event leaves the window after its length"
    );
}

async fn records_carry_versions(pair: Pair) {
    let store = pair.first;
    assert_eq!(store.get("r:{a}").await.unwrap(), None);
    assert_eq!(store.put("r:{a}", b"one", Ttl::Persist).await.unwrap(), 1);
    assert_eq!(store.put("r:{a}", b"two", Ttl::Persist).await.unwrap(), 2);
    let record = store.get("r:{a}").await.unwrap().unwrap();
    assert_eq!((record.value.as_slice(), record.version), (&b"two"[..], 2));
    assert!(store.delete("r:{a}").await.unwrap());
    assert!(!store.delete("r:{a}").await.unwrap());
    assert_eq!(store.get("r:{a}").await.unwrap(), None);
}

async fn insert_creates_only_once(pair: Pair) {
    let store = pair.first;
    assert!(
        store
            .insert("jti:{x}", b"first", Ttl::Set(Duration::from_secs(60)))
            .await
            .unwrap()
    );
    assert!(
        !pair
            .second
            .insert("jti:{x}", b"second", Ttl::Set(Duration::from_secs(60)))
            .await
            .unwrap()
    );
    let record = store.get("jti:{x}").await.unwrap().unwrap();
    assert_eq!(
        (record.value.as_slice(), record.version),
        (&b"first"[..], 1)
    );
}

async fn records_expire(pair: Pair) {
    let store = pair.first;
    store
        .insert("otp:{e}", b"v", Ttl::Set(Duration::from_millis(300)))
        .await
        .unwrap();
    store
        .put("flow:{e}", b"v", Ttl::Set(Duration::from_millis(300)))
        .await
        .unwrap();
    assert!(store.get("otp:{e}").await.unwrap().is_some());
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(store.get("otp:{e}").await.unwrap(), None);
    assert_eq!(store.get("flow:{e}").await.unwrap(), None);
    assert_eq!(store.consume("otp:{e}").await.unwrap(), None);
    assert!(matches!(
        store.transition("flow:{e}", 1, b"w", Ttl::Keep, None).await,
        Err(StoreError::NotFound)
    ));
    // An expired key can be created afresh.
    assert!(
        store
            .insert("otp:{e}", b"again", Ttl::Set(Duration::from_secs(5)))
            .await
            .unwrap()
    );
}

async fn transitions_keep_or_reset_ttl(pair: Pair) {
    let store = pair.first;
    store
        .insert("k:{t}", b"0", Ttl::Set(Duration::from_millis(400)))
        .await
        .unwrap();
    // Keep: the original expiry still applies.
    store
        .transition("k:{t}", 1, b"1", Ttl::Keep, None)
        .await
        .unwrap();
    store
        .insert("p:{t}", b"0", Ttl::Set(Duration::from_millis(400)))
        .await
        .unwrap();
    // Persist: the record outlives its first expiry.
    store
        .transition("p:{t}", 1, b"1", Ttl::Persist, None)
        .await
        .unwrap();
    store
        .insert("s:{t}", b"0", Ttl::Set(Duration::from_millis(400)))
        .await
        .unwrap();
    // Set: a new, longer expiry.
    store
        .transition("s:{t}", 1, b"1", Ttl::Set(Duration::from_secs(30)), None)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(store.get("k:{t}").await.unwrap(), None);
    assert_eq!(store.get("p:{t}").await.unwrap().unwrap().version, 2);
    assert_eq!(store.get("s:{t}").await.unwrap().unwrap().version, 2);
}

async fn transition_is_conditional(pair: Pair) {
    let store = pair.first;
    assert!(matches!(
        store.transition("f:{c}", 1, b"x", Ttl::Keep, None).await,
        Err(StoreError::NotFound)
    ));
    store
        .insert("f:{c}", b"created", Ttl::Set(Duration::from_secs(60)))
        .await
        .unwrap();
    assert_eq!(
        store
            .transition("f:{c}", 1, b"waiting", Ttl::Keep, None)
            .await
            .unwrap(),
        2
    );
    assert!(matches!(
        pair.second
            .transition("f:{c}", 1, b"stale", Ttl::Keep, None)
            .await,
        Err(StoreError::Conflict)
    ));
    let record = store.get("f:{c}").await.unwrap().unwrap();
    assert_eq!(
        (record.value.as_slice(), record.version),
        (&b"waiting"[..], 2)
    );
}

async fn racing_transitions_have_one_winner(pair: Pair) {
    pair.first
        .insert("f:{race}", b"pending", Ttl::Set(Duration::from_secs(60)))
        .await
        .unwrap();
    let contenders = (0..16).map(|i| {
        let store = if i % 2 == 0 {
            Arc::clone(&pair.first)
        } else {
            Arc::clone(&pair.second)
        };
        tokio::spawn(async move {
            let decision = if i % 2 == 0 { "approved" } else { "denied" };
            store
                .transition("f:{race}", 1, decision.as_bytes(), Ttl::Keep, None)
                .await
                .map(|_| decision)
        })
    });
    let outcomes: Vec<_> = futures_util::future::join_all(contenders)
        .await
        .into_iter()
        .map(|joined| joined.unwrap())
        .collect();
    let winners: Vec<_> = outcomes.iter().filter_map(|o| o.as_ref().ok()).collect();
    assert_eq!(winners.len(), 1, "exactly one winner: {outcomes:?}");
    assert!(
        outcomes
            .iter()
            .filter(|o| o.is_err())
            .all(|o| matches!(o, Err(StoreError::Conflict)))
    );
    let record = pair.first.get("f:{race}").await.unwrap().unwrap();
    assert_eq!(record.version, 2);
    assert_eq!(record.value, winners[0].as_bytes());
}

async fn consume_is_once_under_concurrency(pair: Pair) {
    pair.first
        .insert("pk:{once}", b"secret", Ttl::Set(Duration::from_secs(60)))
        .await
        .unwrap();
    let takers = (0..16).map(|i| {
        let store = if i % 2 == 0 {
            Arc::clone(&pair.first)
        } else {
            Arc::clone(&pair.second)
        };
        tokio::spawn(async move { store.consume("pk:{once}").await.unwrap() })
    });
    let taken: Vec<_> = futures_util::future::join_all(takers)
        .await
        .into_iter()
        .filter_map(|joined| joined.unwrap())
        .collect();
    assert_eq!(taken, vec![b"secret".to_vec()]);
    assert_eq!(pair.first.get("pk:{once}").await.unwrap(), None);
}

async fn indexes_hold_members(pair: Pair) {
    let store = pair.first;
    assert!(
        store
            .index_members("devices:{u:a}")
            .await
            .unwrap()
            .is_empty()
    );
    store
        .index_add("devices:{u:a}", "d1", Ttl::Persist, None)
        .await
        .unwrap();
    store
        .index_add("devices:{u:a}", "d2", Ttl::Persist, None)
        .await
        .unwrap();
    pair.second
        .index_add("devices:{u:a}", "d2", Ttl::Persist, None)
        .await
        .unwrap();
    let mut members = store.index_members("devices:{u:a}").await.unwrap();
    members.sort();
    assert_eq!(members, ["d1", "d2"]);
    assert!(store.index_remove("devices:{u:a}", "d1").await.unwrap());
    assert!(!store.index_remove("devices:{u:a}", "d1").await.unwrap());
    assert_eq!(store.index_members("devices:{u:a}").await.unwrap(), ["d2"]);
}

async fn indexes_expire(pair: Pair) {
    let store = pair.first;
    store
        .index_add(
            "pending:{d}",
            "a1",
            Ttl::Set(Duration::from_millis(300)),
            None,
        )
        .await
        .unwrap();
    assert_eq!(store.index_members("pending:{d}").await.unwrap(), ["a1"]);
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(store.index_members("pending:{d}").await.unwrap().is_empty());
}

async fn waiter_is_woken_by_a_write_through_a_second_client(pair: Pair) {
    pair.first
        .insert("f:{w}", b"waiting", Ttl::Set(Duration::from_secs(60)))
        .await
        .unwrap();
    let mut subscription = pair.first.subscribe("flow:w");
    let writer = Arc::clone(&pair.second);
    let write = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(100)).await;
        writer
            .transition("f:{w}", 1, b"approved", Ttl::Keep, Some("flow:w"))
            .await
            .unwrap();
    });
    assert!(
        subscription.wait(Duration::from_secs(5)).await,
        "woken by the write"
    );
    write.await.unwrap();
    assert_eq!(
        pair.first.get("f:{w}").await.unwrap().unwrap().value,
        b"approved"
    );
}

async fn waiter_without_write_times_out(pair: Pair) {
    let mut subscription = pair.first.subscribe("flow:quiet");
    // A write on another channel does not wake this one.
    pair.second.notify("flow:other").await.unwrap();
    assert!(!subscription.wait(Duration::from_millis(300)).await);
}

async fn notify_wakes_waiters(pair: Pair) {
    let mut early = pair.first.subscribe("device:n");
    let mut other = pair.second.subscribe("device:n");
    // The write lands before anyone waits: subscribing first means it is not missed.
    pair.second.notify("device:n").await.unwrap();
    assert!(early.wait(Duration::from_secs(5)).await);
    assert!(other.wait(Duration::from_secs(5)).await);
}

async fn index_add_wakes_waiters(pair: Pair) {
    let mut subscription = pair.first.subscribe("device:i");
    pair.second
        .index_add(
            "pending:{d:i}",
            "a1",
            Ttl::Set(Duration::from_secs(5)),
            Some("device:i"),
        )
        .await
        .unwrap();
    assert!(subscription.wait(Duration::from_secs(5)).await);
    assert_eq!(
        pair.first.index_members("pending:{d:i}").await.unwrap(),
        ["a1"]
    );
}

async fn snapshot_reads_records_and_sets_of_one_slot(pair: Pair) {
    let (first, second) = (pair.first, pair.second);
    assert_eq!(
        first
            .snapshot(&["user:{u:s}", "default:{u:s}"], &["devices:{u:s}"])
            .await
            .unwrap(),
        Snapshot {
            records: vec![None, None],
            indexes: vec![Vec::new()],
        },
        "nothing there yet"
    );
    second
        .put("user:{u:s}", b"one", Ttl::Persist)
        .await
        .unwrap();
    second
        .put("user:{u:s}", b"two", Ttl::Persist)
        .await
        .unwrap();
    second
        .put("short:{u:s}", b"gone", Ttl::Set(Duration::from_millis(300)))
        .await
        .unwrap();
    for member in ["d1", "d2"] {
        second
            .index_add("devices:{u:s}", member, Ttl::Persist, None)
            .await
            .unwrap();
    }
    let read = first
        .snapshot(
            &["user:{u:s}", "default:{u:s}", "short:{u:s}"],
            &["devices:{u:s}", "pending:{u:s}"],
        )
        .await
        .unwrap();
    let record = |value: &[u8], version| {
        Some(Record {
            value: value.to_vec(),
            version,
        })
    };
    assert_eq!(
        read.records,
        [record(b"two", 2), None, record(b"gone", 1)],
        "what another client wrote, versions included, in the order asked"
    );
    let mut members = read.indexes[0].clone();
    members.sort();
    assert_eq!(members, ["d1", "d2"]);
    assert!(read.indexes[1].is_empty());

    // What changes between two reads is seen by the second: nothing is kept.
    second
        .put("default:{u:s}", b"d2", Ttl::Persist)
        .await
        .unwrap();
    assert!(second.index_remove("devices:{u:s}", "d1").await.unwrap());
    tokio::time::sleep(Duration::from_millis(600)).await;
    let read = first
        .snapshot(&["default:{u:s}", "short:{u:s}"], &["devices:{u:s}"])
        .await
        .unwrap();
    assert_eq!(
        read.records,
        [record(b"d2", 1), None],
        "and what expired is gone"
    );
    assert_eq!(read.indexes, [["d2"]]);

    // One slot only, on every backend: a Cluster could not run it.
    for (records, indexes) in [
        (&["user:{u:s}", "user:{u:t}"][..], &[][..]),
        (&["user:{u:s}"][..], &["devices:{u:t}"][..]),
        (&["user:{u:s}"][..], &["devices-of-everyone"][..]),
    ] {
        assert!(
            matches!(
                first.snapshot(records, indexes).await,
                Err(StoreError::CrossSlot)
            ),
            "{records:?} {indexes:?}"
        );
    }
}

async fn snapshot_is_one_atomic_step(pair: Pair) {
    // The writer changes a record, then adds to a set: at any instant the record's
    // version is the set's size or one more. Reads made one after the other (the record,
    // then the set) would see the set ahead of the record.
    const WRITES: usize = 300;
    let writer = tokio::spawn({
        let store = Arc::clone(&pair.second);
        async move {
            for n in 0..WRITES {
                store.put("n:{u:race}", b"", Ttl::Persist).await.unwrap();
                store
                    .index_add("s:{u:race}", &n.to_string(), Ttl::Persist, None)
                    .await
                    .unwrap();
            }
        }
    });
    let mut reads = 0;
    loop {
        let done = writer.is_finished();
        let read = pair
            .first
            .snapshot(&["n:{u:race}"], &["s:{u:race}"])
            .await
            .unwrap();
        let version = read.records[0].as_ref().map_or(0, |record| record.version);
        let size = read.indexes[0].len() as u64;
        assert!(
            version == size || version == size + 1,
            "read {reads}: the record at version {version} beside a set of {size}"
        );
        reads += 1;
        if done {
            break;
        }
    }
    assert_eq!(
        pair.first
            .snapshot(&["n:{u:race}"], &["s:{u:race}"])
            .await
            .unwrap()
            .indexes[0]
            .len(),
        WRITES
    );
    println!("{reads} snapshots beside {WRITES} pairs of writes");
}

/// A compare-and-set whose version moved on writes nothing and hands back the record as it
/// is, so the caller can apply its change again without reading.
async fn a_stale_transition_answers_with_the_current_record(pair: Pair) {
    let (first, second) = (pair.first, pair.second);
    assert!(matches!(
        first
            .transition_or_current("f:{s}", 1, b"x", Ttl::Keep, None)
            .await,
        Err(StoreError::NotFound)
    ));
    first
        .insert("f:{s}", b"created", Ttl::Set(Duration::from_secs(60)))
        .await
        .unwrap();
    let mut subscription = first.subscribe("flow:s");
    assert_eq!(
        second
            .transition_or_current("f:{s}", 1, b"waiting", Ttl::Keep, Some("flow:s"))
            .await
            .unwrap(),
        Transitioned::Written(2)
    );
    assert!(subscription.wait(Duration::from_secs(5)).await, "published");
    // The first client still holds version 1: it gets version 2 back, not written over.
    assert_eq!(
        first
            .transition_or_current("f:{s}", 1, b"stale", Ttl::Keep, Some("flow:s"))
            .await
            .unwrap(),
        Transitioned::Stale(Record {
            value: b"waiting".to_vec(),
            version: 2,
        })
    );
    assert!(
        !subscription.wait(Duration::from_millis(300)).await,
        "a refused write wakes nobody"
    );
    assert_eq!(
        first
            .transition_or_current("f:{s}", 2, b"approved", Ttl::Keep, None)
            .await
            .unwrap(),
        Transitioned::Written(3)
    );
    let record = second.get("f:{s}").await.unwrap().unwrap();
    assert_eq!(
        (record.value.as_slice(), record.version),
        (&b"approved"[..], 3)
    );
}

fn log_entry(entry: &[u8]) -> LogEntry<'_> {
    LogEntry {
        key: "events:{lg}",
        entry,
        ttl: Duration::from_secs(60),
    }
}

async fn a_logged_commit_appends_exactly_when_it_writes(pair: Pair) {
    let (first, second) = (pair.first, pair.second);
    let ttl = Ttl::Set(Duration::from_secs(60));
    let commit = |store: &Arc<dyn Store>, expected, value: &'static [u8]| {
        let store = Arc::clone(store);
        async move {
            store
                .commit_logged("f:{lg}", expected, value, ttl, None, log_entry(value))
                .await
        }
    };
    assert!(matches!(
        commit(&first, Some(1), b"none").await,
        Err(StoreError::NotFound)
    ));
    assert_eq!(
        commit(&first, None, b"start").await.unwrap(),
        Transitioned::Written(1)
    );
    assert!(matches!(
        commit(&second, None, b"again").await,
        Err(StoreError::Conflict)
    ));
    assert_eq!(
        commit(&second, Some(1), b"entered").await.unwrap(),
        Transitioned::Written(2)
    );
    // A stale version writes nothing, its entry neither, and hands back the record.
    assert_eq!(
        commit(&first, Some(1), b"stale").await.unwrap(),
        Transitioned::Stale(Record {
            value: b"entered".to_vec(),
            version: 2,
        })
    );
    assert_eq!(
        second.log_entries("events:{lg}").await.unwrap(),
        [b"start".to_vec(), b"entered".to_vec()],
        "oldest first, only what was written"
    );
    assert!(first.log_entries("events:{none}").await.unwrap().is_empty());
    // The list lives on the record's slot, or nowhere.
    let elsewhere = LogEntry {
        key: "events:{elsewhere}",
        ..log_entry(b"x")
    };
    assert!(matches!(
        first
            .commit_logged("f:{lg}", Some(2), b"x", Ttl::Keep, None, elsewhere)
            .await,
        Err(StoreError::CrossSlot)
    ));
    assert_eq!(first.get("f:{lg}").await.unwrap().unwrap().version, 2);
}

async fn a_log_outlives_its_record_by_its_own_ttl(pair: Pair) {
    let store = pair.first;
    let log = |entry| LogEntry {
        key: "events:{lt}",
        entry,
        ttl: Duration::from_millis(900),
    };
    let record_ttl = Ttl::Set(Duration::from_millis(300));
    store
        .commit_logged("f:{lt}", None, b"v", record_ttl, None, log(b"one"))
        .await
        .unwrap();
    // A later entry keeps the list's expiry (set when the list was created).
    store
        .commit_logged("f:{lt}", Some(1), b"w", Ttl::Keep, None, log(b"two"))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        store.get("f:{lt}").await.unwrap(),
        None,
        "the record is gone"
    );
    assert_eq!(store.log_entries("events:{lt}").await.unwrap().len(), 2);
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(
        store.log_entries("events:{lt}").await.unwrap().is_empty(),
        "the list expires in its turn"
    );
}

async fn timelines_page_newest_first_and_drop_what_is_too_old(pair: Pair) {
    let (first, second) = (pair.first, pair.second);
    let keep = Duration::from_secs(3600);
    for (member, at) in [("a", 1_000_000), ("c", 3_000_000), ("b", 2_000_000)] {
        first
            .timeline_add("flows:{u:tl}", member, at, keep)
            .await
            .unwrap();
    }
    assert_eq!(
        second
            .timeline_page("flows:{u:tl}", None, 10)
            .await
            .unwrap(),
        [
            ("c".to_owned(), 3_000_000),
            ("b".to_owned(), 2_000_000),
            ("a".to_owned(), 1_000_000)
        ]
    );
    assert_eq!(
        second
            .timeline_page("flows:{u:tl}", Some(3_000_000), 1)
            .await
            .unwrap(),
        [("b".to_owned(), 2_000_000)],
        "strictly before, and at most the limit"
    );
    assert!(
        second
            .timeline_page("flows:{u:none}", None, 10)
            .await
            .unwrap()
            .is_empty()
    );
    // A member added more than `keep` after the oldest drops it.
    first
        .timeline_add("flows:{u:tl}", "d", 1_000_000 + 3_600_001, keep)
        .await
        .unwrap();
    let members: Vec<String> = second
        .timeline_page("flows:{u:tl}", None, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|(member, _)| member)
        .collect();
    assert_eq!(members, ["d", "c", "b"]);
}
