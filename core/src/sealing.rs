//! Sealing the secrets a verifier must keep usable (TOTP seeds): encrypted at rest with a
//! key that lives outside the store (JWE, `dir` + A256GCM, through josekit), so that a copy
//! of Redis alone does not yield them.

use base64::Engine;
use josekit::jwe::{self, Dir, JweHeader};

use crate::error::AdapterError;

/// What marks a sealed value (a compact JWE follows).
const SEALED: &str = "sealed:";

/// The data key: 32 random bytes, given base64 (standard or URL-safe) in an environment
/// variable.
#[derive(Clone)]
pub struct DataKey([u8; 32]);

impl std::fmt::Debug for DataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DataKey(..)")
    }
}

impl DataKey {
    /// Reads the key from the environment variable `name`; the error names the variable.
    pub fn from_env(name: &str) -> Result<Self, String> {
        let raw = std::env::var(name)
            .map_err(|_| format!("the environment variable {name} is not set"))?;
        let raw = raw.trim().trim_end_matches('=');
        let bytes = base64::engine::general_purpose::STANDARD_NO_PAD
            .decode(raw)
            .or_else(|_| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(raw))
            .map_err(|_| format!("{name} is not base64"))?;
        let key: [u8; 32] = bytes
            .try_into()
            .map_err(|_| format!("{name} must hold 32 bytes (openssl rand -base64 32)"))?;
        Ok(Self(key))
    }

    /// A key from its bytes.
    pub fn from_bytes(key: [u8; 32]) -> Self {
        Self(key)
    }

    /// HMAC-SHA256 of `data` under the key (for digests a copy of the store cannot search);
    /// `None` only if the MAC refused the key, which HMAC never does.
    pub fn mac(&self, data: &[u8]) -> Option<[u8; 32]> {
        use hmac::{Hmac, Mac};
        let mut mac = <Hmac<sha2::Sha256> as Mac>::new_from_slice(&self.0).ok()?;
        mac.update(data);
        Some(mac.finalize().into_bytes().into())
    }

    /// Encrypts `plain`.
    pub fn seal(&self, plain: &str) -> Result<String, AdapterError> {
        let encrypter = Dir
            .encrypter_from_bytes(self.0)
            .map_err(AdapterError::internal)?;
        let mut header = JweHeader::new();
        header.set_content_encryption("A256GCM");
        let compact = jwe::serialize_compact(plain.as_bytes(), &header, &encrypter)
            .map_err(AdapterError::internal)?;
        Ok(format!("{SEALED}{compact}"))
    }

    /// Decrypts a sealed value.
    fn unseal(&self, compact: &str) -> Result<String, AdapterError> {
        let decrypter = Dir
            .decrypter_from_bytes(self.0)
            .map_err(AdapterError::internal)?;
        let (plain, _) = jwe::deserialize_compact(compact, &decrypter).map_err(|_| {
            AdapterError::internal("a sealed secret does not open with the data key")
        })?;
        String::from_utf8(plain).map_err(AdapterError::internal)
    }
}

/// Seals `plain` when a data key is configured; stores it as is otherwise.
pub fn seal(key: Option<&DataKey>, plain: &str) -> Result<String, AdapterError> {
    match key {
        Some(key) => key.seal(plain),
        None => Ok(plain.to_owned()),
    }
}

/// Opens a stored secret: sealed ones with the data key, ones written before a key was
/// configured as they are.
pub fn open(key: Option<&DataKey>, stored: &str) -> Result<String, AdapterError> {
    match (stored.strip_prefix(SEALED), key) {
        (Some(compact), Some(key)) => key.unseal(compact),
        (Some(_), None) => Err(AdapterError::internal(
            "a sealed secret needs the data key (secrets.data_key_env)",
        )),
        (None, _) => Ok(stored.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_values_open_only_with_their_key() {
        let key = DataKey([7; 32]);
        let sealed = seal(Some(&key), "JBSWY3DPEHPK3PXP").unwrap();
        assert!(sealed.starts_with(SEALED) && !sealed.contains("JBSWY3DPEHPK3PXP"));
        assert_ne!(
            sealed,
            seal(Some(&key), "JBSWY3DPEHPK3PXP").unwrap(),
            "fresh IVs"
        );
        assert_eq!(open(Some(&key), &sealed).unwrap(), "JBSWY3DPEHPK3PXP");
        assert!(open(Some(&DataKey([8; 32])), &sealed).is_err());
        assert!(open(None, &sealed).is_err());
        assert_eq!(
            open(Some(&key), "PLAIN").unwrap(),
            "PLAIN",
            "written before a key"
        );
        assert_eq!(seal(None, "PLAIN").unwrap(), "PLAIN");
    }
}
