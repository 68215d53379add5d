//! The token signing keys as this instance uses them: parsed once, cached, and reloaded
//! from core's shared key set now and then (after a rotation), or loaded from a JWK set
//! file. The JWKS keeps retired keys until every token they signed has expired.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use assent_core::oauth::signing_keys::StoredKey;
use assent_core::{Adapter, AdapterError};
use josekit::jwk::alg::ec::EcKeyPair;
use josekit::jwk::alg::rsa::RsaKeyPair;
use josekit::jwk::{Jwk, JwkSet, KeyPair};
use josekit::jws::{ES256, JwsHeader, JwsSigner, PS256, RS256};
use josekit::jwt::{self, JwtPayload};
use serde::Serialize;
use serde_json::{Map, Value};

/// Why the keys could not be loaded or used.
#[derive(Debug, thiserror::Error)]
pub enum SigningError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] AdapterError),
    /// Key parsing or signing failed.
    #[error("jose: {0}")]
    Jose(#[from] josekit::JoseError),
    /// The claims are not a JSON object (a bug).
    #[error("token claims: {0}")]
    Claims(#[from] serde_json::Error),
    /// The key file is unreadable or not a private JWK set.
    #[error("signing key file: {0}")]
    File(String),
}

/// One usable key, with its signers built once: building one decodes the key, which
/// costs more than an ES256 signature.
struct Key {
    kid: String,
    kty: &'static str,
    signers: Vec<(&'static str, Box<dyn JwsSigner>)>,
    public: Jwk,
    retired: bool,
}

/// The keys as loaded.
pub struct KeySet {
    keys: Vec<Key>,
}

impl KeySet {
    fn load(stored: &[StoredKey]) -> Result<Self, SigningError> {
        let mut keys = Vec::new();
        for key in stored {
            let private = Jwk::from_map(key.private_jwk.clone())?;
            let (kty, public, signers): (_, _, Vec<(_, Box<dyn JwsSigner>)>) =
                match private.key_type() {
                    "RSA" => {
                        // From the key itself, not the JWK: a JWK may name one algorithm
                        // (`alg`), and the key serves both RS256 and PS256.
                        let pair = RsaKeyPair::from_jwk(&private)?;
                        let der = pair.to_der_private_key();
                        (
                            "RSA",
                            pair.to_jwk_public_key(),
                            vec![
                                (
                                    "RS256",
                                    Box::new(RS256.signer_from_der(&der).map_err(short_rsa)?),
                                ),
                                (
                                    "PS256",
                                    Box::new(PS256.signer_from_der(&der).map_err(short_rsa)?),
                                ),
                            ],
                        )
                    }
                    "EC" => (
                        "EC",
                        EcKeyPair::from_jwk(&private)?.to_jwk_public_key(),
                        vec![(
                            "ES256",
                            Box::new(ES256.signer_from_jwk(&private).map_err(|_| {
                                SigningError::File("an EC key must be a private P-256 key".into())
                            })?),
                        )],
                    ),
                    other => {
                        return Err(SigningError::File(format!("unsupported key type {other}")));
                    }
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
                kty,
                signers,
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
            .find(|key| !key.retired && key.kty == kty)
    }

    /// Signs `claims` as a JWT with `alg` (RS256, PS256, ES256) and header `typ`.
    pub fn sign(
        &self,
        alg: &str,
        typ: &str,
        claims: &impl Serialize,
    ) -> Result<String, SigningError> {
        let kty = if alg == "ES256" { "EC" } else { "RSA" };
        let key = self
            .current(kty)
            .ok_or_else(|| SigningError::File(format!("no current {kty} key")))?;
        let mut header = JwsHeader::new();
        header.set_token_type(typ);
        header.set_key_id(&key.kid);
        let signer = key
            .signers
            .iter()
            .find(|(name, _)| *name == alg)
            .map(|(_, signer)| signer.as_ref())
            .ok_or_else(|| SigningError::File(format!("no {alg} signer")))?;
        let Value::Object(claims) = serde_json::to_value(claims)? else {
            return Err(SigningError::File("token claims are not an object".into()));
        };
        let payload = JwtPayload::from_map(claims)?;
        Ok(jwt::encode_with_signer(&payload, &header, signer)?)
    }

    /// No key loaded yet (the store has not answered since start-up).
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The public keys, as published at `/pf/JWKS`.
    pub fn jwks(&self) -> JwkSet {
        let mut set = JwkSet::new();
        for key in &self.keys {
            set.push_key(key.public.clone());
        }
        set
    }

    /// Refuses a set that cannot sign every token kind: an RSA key (ID tokens are RS256 by
    /// default) and an EC P-256 key (access tokens are ES256 by default).
    fn check_usable(&self) -> Result<(), SigningError> {
        // Loading built the signers, which refuse a short RSA key or another curve.
        self.current("RSA")
            .ok_or_else(|| SigningError::File("an RSA signing key is required".into()))?;
        self.current("EC")
            .ok_or_else(|| SigningError::File("an EC P-256 signing key is required".into()))?;
        Ok(())
    }
}

fn short_rsa(_: josekit::JoseError) -> SigningError {
    SigningError::File("an RSA key must be a private key of at least 2048 bits".into())
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
    /// When the keys were loaded (ms since the epoch, by the adapter's clock) and the keys.
    loaded: RwLock<(u64, Arc<KeySet>)>,
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
            None => match adapter.signing_keys().load_or_create().await {
                Ok(stored) => (Source::Store, KeySet::load(&stored)?),
                // Redis is not up yet: start with no keys, loaded "long ago", so that the
                // first use after Redis is reached loads (or creates) them.
                Err(AdapterError::Unavailable(error)) => {
                    tracing::info!(%error, "signing keys load once the store answers");
                    let ring = Self {
                        adapter: adapter.clone(),
                        source: Source::Store,
                        refresh: Duration::from_secs(config.key_refresh_secs),
                        loaded: RwLock::new((0, Arc::new(KeySet { keys: Vec::new() }))),
                    };
                    return Ok(ring);
                }
                Err(error) => return Err(error.into()),
            },
        };
        Ok(Self {
            adapter: adapter.clone(),
            source,
            refresh: Duration::from_secs(config.key_refresh_secs),
            loaded: RwLock::new((adapter.clock().now_ms(), Arc::new(set))),
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
        let age = self.adapter.clock().now_ms().saturating_sub(loaded_at);
        if matches!(self.source, Source::File) || u128::from(age) < self.refresh.as_millis() {
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
        let stored = self.adapter.signing_keys().load_or_create().await?;
        let set = Arc::new(KeySet::load(&stored)?);
        let mut guard = self
            .loaded
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *guard = (self.adapter.clock().now_ms(), Arc::clone(&set));
        Ok(set)
    }
}
