//! The token signing keys every instance shares: an RSA key (RS256, PS256) and an EC
//! P-256 key (ES256), generated on the first start. Rotation adds new current keys and
//! keeps the retired ones until every token they signed has expired. With a data key
//! configured, the record is sealed at rest like the TOTP seeds (a copy of Redis alone
//! must not let anyone sign tokens); records written before a key was configured still
//! load, and are sealed at the next rotation.

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
use crate::sealing::{self, DataKey};
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

fn decode(data_key: Option<&DataKey>, bytes: &[u8]) -> Result<Vec<StoredKey>, AdapterError> {
    let stored = std::str::from_utf8(bytes)
        .map_err(|_| AdapterError::internal("stored signing keys: not UTF-8"))?;
    let json = sealing::open(data_key, stored)?;
    serde_json::from_str::<StoredKeys>(&json)
        .map(|stored| stored.keys)
        .map_err(|error| AdapterError::internal(format!("stored signing keys: {error}")))
}

fn encode(data_key: Option<&DataKey>, keys: Vec<StoredKey>) -> Result<Vec<u8>, AdapterError> {
    let json = serde_json::to_string(&StoredKeys { keys }).map_err(AdapterError::internal)?;
    Ok(sealing::seal(data_key, &json)?.into_bytes())
}

/// The shared signing keys.
pub struct SigningKeys<'a> {
    store: &'a dyn Store,
    clock: &'a dyn Clock,
    data_key: Option<&'a DataKey>,
}

impl<'a> SigningKeys<'a> {
    /// The keys in `store`, stamped by `clock`, sealed under `data_key` when there is one.
    pub fn new(store: &'a dyn Store, clock: &'a dyn Clock, data_key: Option<&'a DataKey>) -> Self {
        Self {
            store,
            clock,
            data_key,
        }
    }

    /// The keys, oldest first; on the very first call of all instances they are
    /// generated, and of racing instances one wins and the others read its keys.
    pub async fn load_or_create(&self) -> Result<Vec<StoredKey>, AdapterError> {
        let key = keys::signing_keys();
        if let Some(record) = self.store.get(&key).await? {
            return decode(self.data_key, &record.value);
        }
        let now = self.clock.now_secs();
        let fresh = vec![
            StoredKey::generate("RSA", now)?,
            StoredKey::generate("EC", now)?,
        ];
        if self
            .store
            .insert(&key, &encode(self.data_key, fresh.clone())?, Ttl::Persist)
            .await?
        {
            return Ok(fresh);
        }
        let record = self
            .store
            .get(&key)
            .await?
            .ok_or_else(|| AdapterError::internal("the signing keys vanished"))?;
        decode(self.data_key, &record.value)
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
                let mut keys: Vec<StoredKey> = decode(self.data_key, &record.value)?
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
                    .transition(
                        key,
                        record.version,
                        &encode(self.data_key, keys)?,
                        Ttl::Persist,
                        None,
                    )
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
        let signing = SigningKeys::new(&store, &clock, None);
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

#[cfg(test)]
mod sealed_tests {
    use super::*;
    use crate::clock::ManualClock;
    use crate::store::MemoryStore;

    /// Whether the stored record shows any private key parameter.
    fn shows_private_material(raw: &str) -> bool {
        ["\"d\"", "\"p\"", "\"q\"", "\"dp\"", "\"dq\"", "\"qi\""]
            .iter()
            .any(|field| raw.contains(field))
    }

    #[tokio::test]
    async fn with_a_data_key_the_private_keys_are_sealed_and_old_records_still_load() {
        let (store, clock) = (MemoryStore::new(), ManualClock::at_secs(1_700_000_000));
        // Written before a data key was configured: in clear.
        let plain = SigningKeys::new(&store, &clock, None)
            .load_or_create()
            .await
            .expect("created");
        let raw = store
            .get(&keys::signing_keys())
            .await
            .expect("read")
            .expect("stored");
        assert!(shows_private_material(&String::from_utf8_lossy(&raw.value)));

        let key = DataKey::from_bytes([9; 32]);
        let sealed = SigningKeys::new(&store, &clock, Some(&key));
        let loaded = sealed.load_or_create().await.expect("old record loads");
        assert_eq!(
            loaded.iter().filter_map(StoredKey::kid).collect::<Vec<_>>(),
            plain.iter().filter_map(StoredKey::kid).collect::<Vec<_>>()
        );
        // The next write seals it.
        sealed
            .rotate(Duration::from_secs(600))
            .await
            .expect("rotated");
        let raw = store
            .get(&keys::signing_keys())
            .await
            .expect("read")
            .expect("stored");
        let raw = String::from_utf8(raw.value).expect("text");
        assert!(
            raw.starts_with("sealed:") && !shows_private_material(&raw),
            "{raw}"
        );
        assert_eq!(sealed.load_or_create().await.expect("opens").len(), 4);
        // Without the key a sealed record does not open (and is not overwritten).
        assert!(
            SigningKeys::new(&store, &clock, None)
                .load_or_create()
                .await
                .is_err()
        );

        // Generated with a key: sealed from the start.
        let fresh = MemoryStore::new();
        SigningKeys::new(&fresh, &clock, Some(&key))
            .load_or_create()
            .await
            .expect("created");
        let raw = fresh
            .get(&keys::signing_keys())
            .await
            .expect("read")
            .expect("stored");
        assert!(!shows_private_material(&String::from_utf8_lossy(
            &raw.value
        )));
    }
}
