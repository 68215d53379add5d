//! The token signing keys every instance shares: an RSA key (RS256, PS256) and an EC
//! P-256 key (ES256), generated on the first start. Rotation adds new current keys and
//! keeps the retired ones until every token they signed has expired.

use std::time::Duration;

use josekit::jwk::KeyPair;
use josekit::jwk::alg::ec::{EcCurve, EcKeyPair};
use josekit::jwk::alg::rsa::RsaKeyPair;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::clock::Clock;
use crate::error::AdapterError;
use crate::ids::random_alphanumeric;
use crate::keys;
use crate::store::{Attempt, Store, StoreError, Ttl, retry_lost_races};

/// One stored key. Not `Debug`: it holds a private key.
#[derive(Clone, Serialize, Deserialize)]
pub struct StoredKey {
    /// The private JWK, with its `kid`.
    pub private_jwk: Map<String, Value>,
    /// When it was generated (seconds since the epoch; 0 for keys from a file).
    pub created_at: u64,
    /// When a newer key replaced it; retired keys only verify.
    pub retired_at: Option<u64>,
}

impl StoredKey {
    /// Its key id.
    pub fn kid(&self) -> Option<&str> {
        self.private_jwk.get("kid").and_then(Value::as_str)
    }

    /// A fresh key of type `kty` (`RSA` 2048 bits, else EC P-256), made at `now_secs`.
    fn generate(kty: &str, now_secs: u64) -> Result<Self, AdapterError> {
        let mut private = match kty {
            "RSA" => RsaKeyPair::generate(2048)
                .map_err(AdapterError::internal)?
                .to_jwk_private_key(),
            _ => EcKeyPair::generate(EcCurve::P256)
                .map_err(AdapterError::internal)?
                .to_jwk_private_key(),
        };
        private.set_key_id(random_alphanumeric(16));
        Ok(Self {
            private_jwk: private.into(),
            created_at: now_secs,
            retired_at: None,
        })
    }
}

#[derive(Serialize, Deserialize)]
struct StoredKeys {
    keys: Vec<StoredKey>,
}

fn decode(bytes: &[u8]) -> Result<Vec<StoredKey>, AdapterError> {
    serde_json::from_slice::<StoredKeys>(bytes)
        .map(|stored| stored.keys)
        .map_err(|error| AdapterError::internal(format!("stored signing keys: {error}")))
}

fn encode(keys: Vec<StoredKey>) -> Result<Vec<u8>, AdapterError> {
    serde_json::to_vec(&StoredKeys { keys }).map_err(AdapterError::internal)
}

/// The shared signing keys.
pub struct SigningKeys<'a> {
    store: &'a dyn Store,
    clock: &'a dyn Clock,
}

impl<'a> SigningKeys<'a> {
    /// The keys in `store`, stamped by `clock`.
    pub fn new(store: &'a dyn Store, clock: &'a dyn Clock) -> Self {
        Self { store, clock }
    }

    /// The keys, oldest first; on the very first call of all instances they are
    /// generated, and of racing instances one wins and the others read its keys.
    pub async fn load_or_create(&self) -> Result<Vec<StoredKey>, AdapterError> {
        let key = keys::signing_keys();
        if let Some(record) = self.store.get(&key).await? {
            return decode(&record.value);
        }
        let now = self.clock.now_secs();
        let fresh = vec![
            StoredKey::generate("RSA", now)?,
            StoredKey::generate("EC", now)?,
        ];
        if self
            .store
            .insert(&key, &encode(fresh.clone())?, Ttl::Persist)
            .await?
        {
            return Ok(fresh);
        }
        let record = self
            .store
            .get(&key)
            .await?
            .ok_or_else(|| AdapterError::internal("the signing keys vanished"))?;
        decode(&record.value)
    }

    /// Retires the current keys and adds new ones; keys retired longer than `retain`
    /// ago (the longest token lifetime) are dropped. Returns the new current kids, RSA
    /// first.
    pub async fn rotate(&self, retain: Duration) -> Result<Vec<String>, AdapterError> {
        let key = &keys::signing_keys();
        retry_lost_races(
            "the signing keys changed concurrently; retry",
            move || async move {
                self.load_or_create().await?;
                let record = self
                    .store
                    .get(key)
                    .await?
                    .ok_or_else(|| AdapterError::internal("the signing keys vanished"))?;
                // The keys and the version come from the same read, so the compare-and-set
                // below cannot overwrite a rotation it did not see.
                let now = self.clock.now_secs();
                let mut keys: Vec<StoredKey> = decode(&record.value)?
                    .into_iter()
                    .filter(|key| key.retired_at.is_none_or(|at| at + retain.as_secs() > now))
                    .map(|mut key| {
                        key.retired_at.get_or_insert(now);
                        key
                    })
                    .collect();
                let current = [
                    StoredKey::generate("RSA", now)?,
                    StoredKey::generate("EC", now)?,
                ];
                let kids = current
                    .iter()
                    .filter_map(|key| key.kid().map(str::to_owned))
                    .collect();
                keys.extend(current);
                match self
                    .store
                    .transition(key, record.version, &encode(keys)?, Ttl::Persist, None)
                    .await
                {
                    Ok(_) => Ok(Attempt::Done(kids)),
                    Err(StoreError::Conflict) => Ok(Attempt::Lost(())),
                    Err(error) => Err(error.into()),
                }
            },
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use crate::store::MemoryStore;

    fn kids(keys: &[StoredKey]) -> Vec<&str> {
        keys.iter().filter_map(StoredKey::kid).collect()
    }

    #[tokio::test]
    async fn keys_are_made_once_and_rotation_keeps_the_previous_ones_for_a_while() {
        let (store, clock) = (MemoryStore::new(), ManualClock::at_secs(1_700_000_000));
        let signing = SigningKeys::new(&store, &clock);
        let first = signing.load_or_create().await.expect("created");
        assert_eq!(first.len(), 2);
        assert_eq!(first[0].private_jwk.get("kty"), Some(&Value::from("RSA")));
        assert_eq!(first[1].private_jwk.get("kty"), Some(&Value::from("EC")));
        let again = signing.load_or_create().await.expect("loaded");
        assert_eq!(kids(&again), kids(&first));

        let retain = Duration::from_secs(600);
        let current = signing.rotate(retain).await.expect("rotated");
        let after = signing.load_or_create().await.expect("loaded");
        assert_eq!(after.len(), 4);
        assert_eq!(
            kids(&after)[2..],
            current.iter().map(String::as_str).collect::<Vec<_>>()
        );
        assert!(
            after[..2]
                .iter()
                .all(|key| key.retired_at == Some(1_700_000_000))
        );
        assert!(after[2..].iter().all(|key| key.retired_at.is_none()));

        // Retired keys go once every token they signed has expired.
        clock.advance(retain);
        let latest = signing.rotate(retain).await.expect("rotated again");
        let after = signing.load_or_create().await.expect("loaded");
        assert_eq!(after.len(), 4);
        assert_eq!(
            kids(&after)[..2],
            current.iter().map(String::as_str).collect::<Vec<_>>()
        );
        assert_eq!(
            kids(&after)[2..],
            latest.iter().map(String::as_str).collect::<Vec<_>>()
        );
    }
}
