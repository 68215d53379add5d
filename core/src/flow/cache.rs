//! The last version of each flow this instance read or wrote, so that a change costs one
//! round trip (its commit) instead of a read and then the commit. A cached flow is never
//! trusted on its own: the commit names the version the change was computed from and is
//! refused, with the current record in the reply, when another instance moved the flow
//! on; and an answer the cached version alone would give is checked against a fresh read
//! (see [`Adapter::on_latest`]).

use std::cell::Cell;
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use super::Flow;
use super::engine::Versioned;
use crate::Adapter;
use crate::error::AdapterError;
use crate::ids::FlowId;

/// Flows kept at most. A flow's entry only has to live from one step of the flow to the
/// next on this instance (seconds), so this covers thousands of flows in flight; past it
/// the least recently used half is dropped, and a dropped flow costs one read. A decoded
/// flow is 1–2 KiB, so the cache holds at most a few MiB.
pub(crate) const CAPACITY: usize = 4096;

struct Cached {
    flow: Flow,
    version: u64,
    /// When the record expires at the latest, as far as this instance knows (ms).
    expires_at_ms: u64,
}

/// Two generations, each up to half the capacity: entries are added to and found in the
/// young one (moved there from the old one when used); when the young one is full, the
/// old one is dropped and the young one becomes old. An approximate LRU in O(1), without
/// a dependency.
#[derive(Default)]
struct Generations {
    young: HashMap<FlowId, Cached>,
    old: HashMap<FlowId, Cached>,
}

impl Generations {
    fn take(&mut self, id: &FlowId) -> Option<Cached> {
        self.young.remove(id).or_else(|| self.old.remove(id))
    }

    fn keep(&mut self, id: FlowId, cached: Cached) {
        if self.young.len() >= CAPACITY / 2 {
            self.old = std::mem::take(&mut self.young);
        }
        self.young.insert(id, cached);
    }
}

/// The per-instance cache of flows (see the module's documentation).
pub(crate) struct FlowCache {
    generations: Mutex<Generations>,
    /// How long an entry lives when its record's expiry is not known (a flow read, not
    /// created, here): the configured flow lifetime. Expiry only frees memory; a flow
    /// cached past its record's end is refused by its commit.
    default_lifetime: Duration,
}

impl FlowCache {
    /// An empty cache; entries of flows this instance did not create live
    /// `default_lifetime`.
    pub(crate) fn new(default_lifetime: Duration) -> Self {
        Self {
            generations: Mutex::default(),
            default_lifetime,
        }
    }

    fn generations(&self) -> MutexGuard<'_, Generations> {
        self.generations
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The flow and version last seen here, unless expired.
    pub(crate) fn get(&self, id: &FlowId, now_ms: u64) -> Option<Versioned> {
        let mut generations = self.generations();
        let cached = generations.take(id)?;
        if cached.expires_at_ms <= now_ms {
            return None;
        }
        let found = (cached.flow.clone(), cached.version);
        generations.keep(id.clone(), cached);
        Some(found)
    }

    /// Remembers `flow` at `version`, unless a newer version is already kept. `lifetime`
    /// is how long the record lives from now when this write set it.
    pub(crate) fn put(&self, flow: &Flow, version: u64, now_ms: u64, lifetime: Option<Duration>) {
        let mut generations = self.generations();
        let previous = generations.take(&flow.id);
        let expires_at_ms = match (lifetime, &previous) {
            (Some(lifetime), _) => now_ms.saturating_add(millis(lifetime)),
            (None, Some(previous)) => previous.expires_at_ms,
            (None, None) => now_ms.saturating_add(millis(self.default_lifetime)),
        };
        let cached = match previous {
            // A read that raced a newer write seen here: keep the newer one. A poll that
            // reads an unchanged flow again costs no copy.
            Some(previous) if previous.version >= version => previous,
            _ => Cached {
                flow: flow.clone(),
                version,
                expires_at_ms,
            },
        };
        generations.keep(flow.id.clone(), cached);
    }

    /// Drops the flow (gone from the store, or its result picked up: nothing more to do).
    pub(crate) fn forget(&self, id: &FlowId) {
        self.generations().take(id);
    }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

tokio::task_local! {
    /// Set while an operation works on a cached flow the store has not confirmed yet: no
    /// commit has landed or been refused with the current record, and no fresh read was
    /// made. A task-local rather than a parameter, because the engine's callers (every
    /// action of every kind) pass flows, not their provenance.
    static UNCONFIRMED: Cell<bool>;
}

/// Whether the flow this task works on is a cached copy the store has not confirmed.
pub(crate) fn unconfirmed() -> bool {
    UNCONFIRMED.try_with(Cell::get).unwrap_or(false)
}

/// The store has given its word on the flow this task works on.
pub(crate) fn confirmed() {
    let _ = UNCONFIRMED.try_with(|unconfirmed| unconfirmed.set(false));
}

impl Adapter {
    /// Runs `operation` on this instance's cached version of the flow when it has one,
    /// else on a fresh read. Whatever the operation commits names the version it was
    /// computed from, so a success stands. An error stands once the store confirmed it (a
    /// refused commit handed back the current record, or the flow is gone); one decided on
    /// the cached version alone is not answered: the operation runs again on a fresh read,
    /// since a newer state may allow what the cached one refused.
    pub(crate) async fn on_latest<T, Fut>(
        &self,
        id: &FlowId,
        operation: impl Fn(Versioned) -> Fut,
    ) -> Result<T, AdapterError>
    where
        Fut: Future<Output = Result<T, AdapterError>>,
    {
        if let Some(cached) = self.flow_cache().get(id, self.clock().now_ms()) {
            let cached_version = cached.1;
            let (answer, unconfirmed) = UNCONFIRMED
                .scope(Cell::new(true), async {
                    let answer = operation(cached).await;
                    (answer, unconfirmed())
                })
                .await;
            match answer {
                // An answer that wrote nothing (the engine confirms its own, so none
                // should): it stands if the flow had not moved on.
                Ok(done) if unconfirmed => {
                    let fresh = self.load_any(id).await?;
                    if fresh.1 == cached_version {
                        return Ok(done);
                    }
                    return operation(fresh).await;
                }
                Ok(done) => return Ok(done),
                // The store's own refusal, or no store to ask.
                Err(error) if !unconfirmed || matches!(error, AdapterError::Unavailable(_)) => {
                    return Err(error);
                }
                Err(_) => {}
            }
        }
        let fresh = self.load_any(id).await?;
        operation(fresh).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::oob;
    use crate::flow::tests::{ctx, head};

    fn a_flow() -> Flow {
        oob::start(head(&[]), oob::Start::default(), &ctx(0))
            .expect("starts")
            .next
    }

    #[test]
    fn a_newer_version_is_never_replaced_by_an_older_read() {
        let cache = FlowCache::new(Duration::from_secs(600));
        let flow = a_flow();
        cache.put(&flow, 3, 0, None);
        cache.put(&flow, 2, 0, None);
        assert_eq!(cache.get(&flow.id, 0).map(|(_, version)| version), Some(3));
        cache.put(&flow, 4, 0, None);
        assert_eq!(cache.get(&flow.id, 0).map(|(_, version)| version), Some(4));
        cache.forget(&flow.id);
        assert!(cache.get(&flow.id, 0).is_none());
    }

    #[test]
    fn entries_expire_with_their_record() {
        let cache = FlowCache::new(Duration::from_secs(600));
        let flow = a_flow();
        cache.put(&flow, 1, 1_000, Some(Duration::from_secs(1)));
        // A later write keeps the record's expiry (`Ttl::Keep`).
        cache.put(&flow, 2, 1_500, None);
        assert!(cache.get(&flow.id, 1_999).is_some());
        assert!(cache.get(&flow.id, 2_000).is_none());
        // A flow read, not created here, lives the configured flow lifetime.
        cache.put(&flow, 3, 0, None);
        assert!(cache.get(&flow.id, 599_999).is_some());
        assert!(cache.get(&flow.id, 600_000).is_none());
    }

    #[test]
    fn the_cache_is_bounded_and_keeps_what_was_used_last() {
        let cache = FlowCache::new(Duration::from_secs(600));
        let kept = a_flow();
        cache.put(&kept, 1, 0, None);
        let mut flow = a_flow();
        for n in 0..CAPACITY * 2 {
            flow.id = FlowId::generate();
            cache.put(&flow, 1, 0, None);
            // Used now and then, it stays.
            if n % (CAPACITY / 4) == 0 {
                assert!(cache.get(&kept.id, 0).is_some(), "after {n}");
            }
        }
        let generations = cache.generations();
        assert!(generations.young.len() + generations.old.len() <= CAPACITY);
    }
}
