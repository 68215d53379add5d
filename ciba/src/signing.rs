//! The token signing keys: an RSA key (RS256, PS256) and an EC P-256 key (ES256),
//! generated on first start and kept in the store so that every instance signs with the
//! same keys, or loaded from a JWK set file. Rotation adds new current keys and keeps the
//! previous ones in the JWKS until every token they signed has expired.

use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use assent_core::clock::Clock;
use assent_core::store::{Store, StoreError, Ttl};
use assent_core::{Adapter, AdapterError, keys};
use josekit::jwk::alg::ec::{EcCurve, EcKeyPair};
use josekit::jwk::alg::rsa::RsaKeyPair;
use josekit::jwk::{Jwk, JwkSet, KeyPair};
use josekit::jws::{ES256, JwsHeader, PS256, RS256};
use josekit::jwt::{self, JwtPayload};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Why the keys could not be loaded, rotated or used.
#[derive(Debug, thiserror::Error)]
pub enum SigningError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] AdapterError),
    /// Key generation, parsing or signing failed.
    #[error("jose: {0}")]
    Jose(#[from] josekit::JoseError),
    /// The key file is unreadable or not a private JWK set.
    #[error("signing key file: {0}")]
    File(String),
}

impl From<StoreError> for SigningError {
    fn from(error: StoreError) -> Self {
        Self::Store(error.into())
    }
}

#[derive(Clone, Serialize, Deserialize)]
struct StoredKey {
    private_jwk: Map<String, Value>,
    created_at: u64,
    retired_at: Option<u64>,
}

#[derive(Default, Serialize, Deserialize)]
struct StoredKeys {
    keys: Vec<StoredKey>,
}

/// One usable key.
struct Key {
    kid: String,
    private: Jwk,
    public: Jwk,
    retired: bool,
}

/// The keys as loaded.
pub struct KeySet {
    keys: Vec<Key>,
}

fn new_key(kty: &str, now_secs: u64) -> Result<StoredKey, SigningError> {
    let mut private = match kty {
        "RSA" => RsaKeyPair::generate(2048)?.to_jwk_private_key(),
        _ => EcKeyPair::generate(EcCurve::P256)?.to_jwk_private_key(),
    };
    private.set_key_id(assent_core::ids::random_alphanumeric(16));
    Ok(StoredKey {
        private_jwk: private.into(),
        created_at: now_secs,
        retired_at: None,
    })
}

impl KeySet {
    fn load(stored: &[StoredKey]) -> Result<Self, SigningError> {
        let mut keys = Vec::new();
        for key in stored {
            let private = Jwk::from_map(key.private_jwk.clone())?;
            let public = match private.key_type() {
                "RSA" => RsaKeyPair::from_jwk(&private)?.to_jwk_public_key(),
                "EC" => EcKeyPair::from_jwk(&private)?.to_jwk_public_key(),
                other => return Err(SigningError::File(format!("unsupported key type {other}"))),
            };
            let kid = private
                .key_id()
                .ok_or_else(|| SigningError::File("every key needs a kid".into()))?
                .to_owned();
            let mut public = public;
            public.set_key_id(&kid);
            public.set_key_use("sig");
            if public.key_type() == "EC" {
                public.set_algorithm("ES256");
            }
            keys.push(Key {
                kid,
                private,
                public,
                retired: key.retired_at.is_some(),
            });
        }
        Ok(Self { keys })
    }

    fn current(&self, kty: &str) -> Option<&Key> {
        self.keys
            .iter()
            .rev()
            .find(|key| !key.retired && key.private.key_type() == kty)
    }

    /// Signs `claims` as a JWT with `alg` (RS256, PS256, ES256) and header `typ`.
    pub fn sign(
        &self,
        alg: &str,
        typ: &str,
        claims: Map<String, Value>,
    ) -> Result<String, SigningError> {
        let kty = if alg == "ES256" { "EC" } else { "RSA" };
        let key = self
            .current(kty)
            .ok_or_else(|| SigningError::File(format!("no current {kty} key")))?;
        let mut header = JwsHeader::new();
        header.set_token_type(typ);
        header.set_key_id(&key.kid);
        let payload = JwtPayload::from_map(claims)?;
        let token = match alg {
            "ES256" => {
                jwt::encode_with_signer(&payload, &header, &ES256.signer_from_jwk(&key.private)?)?
            }
            "PS256" => {
                jwt::encode_with_signer(&payload, &header, &PS256.signer_from_jwk(&key.private)?)?
            }
            _ => jwt::encode_with_signer(&payload, &header, &RS256.signer_from_jwk(&key.private)?)?,
        };
        Ok(token)
    }

    /// The public keys, as published at `/pf/JWKS`.
    pub fn jwks(&self) -> JwkSet {
        let mut set = JwkSet::new();
        for key in &self.keys {
            set.push_key(key.public.clone());
        }
        set
    }

    /// Refuses a set that cannot sign every token kind: an RSA key of at least 2048 bits
    /// (access tokens are RS256) and an EC P-256 key.
    fn check_usable(&self) -> Result<(), SigningError> {
        let rsa = self
            .current("RSA")
            .ok_or_else(|| SigningError::File("an RSA signing key is required".into()))?;
        RS256.signer_from_jwk(&rsa.private).map_err(|_| {
            SigningError::File("the RSA key must be a private key of at least 2048 bits".into())
        })?;
        let ec = self
            .current("EC")
            .ok_or_else(|| SigningError::File("an EC P-256 signing key is required".into()))?;
        ES256
            .signer_from_jwk(&ec.private)
            .map_err(|_| SigningError::File("the EC key must be a private P-256 key".into()))?;
        Ok(())
    }

    /// The kid of the current key of each type (RSA first).
    pub fn current_kids(&self) -> Vec<String> {
        ["RSA", "EC"]
            .into_iter()
            .filter_map(|kty| self.current(kty).map(|key| key.kid.clone()))
            .collect()
    }
}

enum Source {
    Store,
    File,
}

/// The keys of this instance, reloaded from the store now and then (after a rotation).
pub struct KeyRing {
    adapter: Adapter,
    source: Source,
    refresh: Duration,
    loaded: RwLock<(Instant, Arc<KeySet>)>,
}

impl KeyRing {
    /// Loads the keys: from the configured file, else from the store, generating them on
    /// the very first start (of all instances, one wins the race and the others read).
    pub async fn load(adapter: &Adapter) -> Result<Self, SigningError> {
        let config = &adapter.config().ciba;
        let (source, set) = match &config.signing_jwk_file {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|error| SigningError::File(format!("{}: {error}", path.display())))?;
                let set: Map<String, Value> = serde_json::from_str(&text)
                    .map_err(|error| SigningError::File(format!("{}: {error}", path.display())))?;
                let keys = set
                    .get("keys")
                    .and_then(Value::as_array)
                    .ok_or_else(|| SigningError::File("not a JWK set".into()))?
                    .iter()
                    .filter_map(|key| key.as_object().cloned())
                    .map(|private_jwk| StoredKey {
                        private_jwk,
                        created_at: 0,
                        retired_at: None,
                    })
                    .collect::<Vec<_>>();
                let set = KeySet::load(&keys)?;
                set.check_usable()?;
                (Source::File, set)
            }
            None => (
                Source::Store,
                KeySet::load(&load_or_create(adapter.store(), adapter.clock()).await?.keys)?,
            ),
        };
        Ok(Self {
            adapter: adapter.clone(),
            source,
            refresh: Duration::from_secs(config.key_refresh_secs),
            loaded: RwLock::new((Instant::now(), Arc::new(set))),
        })
    }

    /// The keys, reloaded from the store when the last load is older than the refresh
    /// interval (a failed reload keeps the keys already loaded).
    pub async fn keys(&self) -> Arc<KeySet> {
        let (loaded_at, set) = {
            let guard = self
                .loaded
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            (guard.0, Arc::clone(&guard.1))
        };
        if matches!(self.source, Source::File) || loaded_at.elapsed() < self.refresh {
            return set;
        }
        self.reload().await.unwrap_or(set)
    }

    /// Reloads from the store now.
    pub async fn reload(&self) -> Result<Arc<KeySet>, SigningError> {
        if matches!(self.source, Source::File) {
            let guard = self
                .loaded
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            return Ok(Arc::clone(&guard.1));
        }
        let stored = load_or_create(self.adapter.store(), self.adapter.clock()).await?;
        let set = Arc::new(KeySet::load(&stored.keys)?);
        let mut guard = self
            .loaded
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *guard = (Instant::now(), Arc::clone(&set));
        Ok(set)
    }
}

async fn load_or_create(store: &dyn Store, clock: &dyn Clock) -> Result<StoredKeys, SigningError> {
    let key = keys::signing_keys();
    if let Some(record) = store.get(&key).await? {
        return serde_json::from_slice(&record.value)
            .map_err(|error| SigningError::File(format!("stored keys: {error}")));
    }
    let fresh = StoredKeys {
        keys: vec![
            new_key("RSA", clock.now_secs())?,
            new_key("EC", clock.now_secs())?,
        ],
    };
    let value =
        serde_json::to_vec(&fresh).map_err(|error| SigningError::File(error.to_string()))?;
    if store.insert(&key, &value, Ttl::Persist).await? {
        return Ok(fresh);
    }
    // Another instance generated them first: use theirs.
    let record = store
        .get(&key)
        .await?
        .ok_or_else(|| SigningError::File("signing keys vanished".into()))?;
    serde_json::from_slice(&record.value).map_err(|error| SigningError::File(error.to_string()))
}

/// Adds new current keys and retires the previous ones; keys retired longer than `retain`
/// ago (the longest token lifetime) are dropped. Returns the new current kids.
pub async fn rotate(
    store: &dyn Store,
    clock: &dyn Clock,
    retain: Duration,
) -> Result<Vec<String>, SigningError> {
    let key = keys::signing_keys();
    for _ in 0..4 {
        load_or_create(store, clock).await?;
        let record = store
            .get(&key)
            .await?
            .ok_or_else(|| SigningError::File("signing keys vanished".into()))?;
        // The keys and the version come from the same read, so the compare-and-set below
        // cannot overwrite a rotation it did not see.
        let current: StoredKeys = serde_json::from_slice(&record.value)
            .map_err(|error| SigningError::File(format!("stored keys: {error}")))?;
        let now = clock.now_secs();
        let mut keys: Vec<StoredKey> = current
            .keys
            .into_iter()
            .filter(|key| key.retired_at.is_none_or(|at| at + retain.as_secs() > now))
            .map(|mut key| {
                key.retired_at.get_or_insert(now);
                key
            })
            .collect();
        keys.push(new_key("RSA", now)?);
        keys.push(new_key("EC", now)?);
        let next = StoredKeys { keys };
        let value =
            serde_json::to_vec(&next).map_err(|error| SigningError::File(error.to_string()))?;
        match store
            .transition(&key, record.version, &value, Ttl::Persist, None)
            .await
        {
            Ok(_) => return Ok(KeySet::load(&next.keys)?.current_kids()),
            Err(StoreError::Conflict) => continue,
            Err(error) => return Err(error.into()),
        }
    }
    Err(SigningError::File(
        "the keys changed concurrently; retry".into(),
    ))
}
