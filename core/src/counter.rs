//! Counters that only move forward (a YubiKey's session and use counters, an OATH token's
//! HOTP counter or last TOTP step): a value is accepted once, and never one at or below
//! the last accepted, so a passcode cannot be replayed.

use crate::error::AdapterError;
use crate::store::{Attempt, Store, StoreError, Ttl, retry_lost_races};

/// The last accepted value at `key`, if any was accepted.
pub(crate) async fn last(store: &dyn Store, key: &str) -> Result<Option<u64>, AdapterError> {
    match store.get(key).await? {
        Some(record) => parse(&record.value).map(Some),
        None => Ok(None),
    }
}

fn parse(value: &[u8]) -> Result<u64, AdapterError> {
    std::str::from_utf8(value)
        .ok()
        .and_then(|text| text.parse::<u64>().ok())
        .ok_or_else(|| AdapterError::internal("a counter record is not a number"))
}

/// Moves the counter at `key` to `value` if `value` is greater than the last accepted one
/// (any value when none was); `false` when it is not (a replay). Compare-and-set: of two
/// concurrent callers with the same value, exactly one gets `true`.
pub(crate) async fn advance(
    store: &dyn Store,
    key: &str,
    value: u64,
) -> Result<bool, AdapterError> {
    let text = &value.to_string();
    retry_lost_races(
        "the passcode is being checked concurrently; retry",
        move || async move {
            let written = match store.get(key).await? {
                None => store.insert(key, text.as_bytes(), Ttl::Persist).await?,
                Some(record) => {
                    if value <= parse(&record.value)? {
                        return Ok(Attempt::Done(false));
                    }
                    match store
                        .transition(key, record.version, text.as_bytes(), Ttl::Keep, None)
                        .await
                    {
                        Ok(_) => true,
                        Err(StoreError::Conflict | StoreError::NotFound) => false,
                        Err(error) => return Err(error.into()),
                    }
                }
            };
            Ok(match written {
                true => Attempt::Done(true),
                false => Attempt::Lost(()),
            })
        },
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MemoryStore;

    #[tokio::test]
    async fn a_counter_moves_forward_only_and_one_of_two_racers_wins() {
        let store = MemoryStore::new();
        assert!(advance(&store, "c", 5).await.unwrap());
        assert!(
            !advance(&store, "c", 5).await.unwrap(),
            "the same value again"
        );
        assert!(!advance(&store, "c", 4).await.unwrap(), "an older value");
        assert!(advance(&store, "c", 6).await.unwrap());
        assert_eq!(last(&store, "c").await.unwrap(), Some(6));
        let (a, b) = tokio::join!(advance(&store, "c", 9), advance(&store, "c", 9));
        assert!(a.unwrap() ^ b.unwrap(), "exactly one of two racers wins");
    }
}
