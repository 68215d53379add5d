//! The device's EC P-256 key pair (ES256, through josekit): made on the device, kept
//! private there, its public half given to the server when the device pairs.

use std::path::Path;

use josekit::jwk::Jwk;
use josekit::jwk::alg::ec::EcKeyPair;
use josekit::jws::alg::ecdsa::EcdsaJwsSigner;
use josekit::jws::{ES256, JwsHeader};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::SdkError;

/// A device's key pair.
#[derive(Clone)]
pub struct DeviceKey {
    /// `d`, `x` and `y`, as kept.
    private: Map<String, Value>,
    public: Map<String, Value>,
    signer: EcdsaJwsSigner,
}

impl std::fmt::Debug for DeviceKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceKey")
            .field("public", &self.public)
            .finish_non_exhaustive()
    }
}

impl DeviceKey {
    /// A fresh key pair.
    pub fn generate() -> Result<Self, SdkError> {
        let pair = ES256.generate_key_pair()?;
        Self::from_pair(&pair)
    }

    /// The key pair of a private JWK (EC, P-256, with `d`), as [`Self::private_jwk`]
    /// gives it or as an older app kept it (`d` alone).
    pub fn from_private_jwk(jwk: Map<String, Value>) -> Result<Self, SdkError> {
        let field = |name: &str| jwk.get(name).and_then(Value::as_str);
        if field("kty") != Some("EC") || field("crv") != Some("P-256") {
            return Err(SdkError::Key("kty must be EC and crv P-256"));
        }
        let Some(d) = field("d") else {
            return Err(SdkError::Key("it has no private part (d)"));
        };
        // From `d` alone: the public half is derived, so a stored `x`/`y` that does not
        // match cannot make the device give the server a key it cannot sign for.
        let mut private = Map::new();
        for (name, value) in [("kty", "EC"), ("crv", "P-256"), ("d", d)] {
            private.insert(name.to_owned(), Value::String(value.to_owned()));
        }
        let pair = EcKeyPair::from_jwk(&Jwk::from_map(private)?)?;
        Self::from_pair(&pair)
    }

    fn from_pair(pair: &EcKeyPair) -> Result<Self, SdkError> {
        use josekit::jwk::KeyPair;
        let private = pair.to_jwk_key_pair();
        let signer = ES256.signer_from_jwk(&private)?;
        let private: Map<String, Value> = private.into();
        // Only the key's own members: the same key always exports the same JWK.
        let members = |names: &[&str]| -> Map<String, Value> {
            names
                .iter()
                .filter_map(|name| Some(((*name).to_owned(), private.get(*name)?.clone())))
                .collect()
        };
        Ok(Self {
            public: members(&["kty", "crv", "x", "y"]),
            private: members(&["kty", "crv", "d", "x", "y"]),
            signer,
        })
    }

    /// The private JWK (`kty`, `crv`, `d`, `x`, `y`), to keep where only the app can
    /// read it.
    pub fn private_jwk(&self) -> Map<String, Value> {
        self.private.clone()
    }

    /// The public JWK (`kty`, `crv`, `x`, `y`), to pair with.
    pub fn public_jwk(&self) -> &Map<String, Value> {
        &self.public
    }

    /// Reads a private JWK from a JSON file.
    pub fn load(path: &Path) -> Result<Self, SdkError> {
        Self::from_private_jwk(crate::file::read_json(path)?)
    }

    /// Writes the private JWK to a JSON file only its owner may read.
    pub fn save(&self, path: &Path) -> Result<(), SdkError> {
        crate::file::write_private_json(path, &self.private)
    }

    /// Signs any claims as a JWT (`typ` JWT), unchecked: for claims this SDK does not
    /// make itself.
    pub fn sign_jwt(&self, claims: &impl Serialize) -> Result<String, SdkError> {
        self.sign(Some("JWT"), claims)
    }

    /// A compact JWS (ES256) over the JSON of `claims`.
    pub(crate) fn sign(
        &self,
        token_type: Option<&str>,
        claims: &impl Serialize,
    ) -> Result<String, SdkError> {
        let mut header = JwsHeader::new();
        if let Some(token_type) = token_type {
            header.set_token_type(token_type);
        }
        let payload =
            serde_json::to_vec(claims).map_err(|e| josekit::JoseError::InvalidJson(e.into()))?;
        Ok(josekit::jws::serialize_compact(
            &payload,
            &header,
            &self.signer,
        )?)
    }
}
