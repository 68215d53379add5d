//! One-time passcodes: codes sent by SMS, voice or email (random, stored only as a salted
//! hash, expiring, counted), and time-based codes (RFC 6238, `totp-rs`) from an
//! authenticator app or the mobile app's own seed.

use rand::Rng;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use totp_rs::{Algorithm, Secret, TOTP};

use crate::sealing::DataKey;

/// Seconds per time step of a TOTP code.
pub const TOTP_STEP: u64 = 30;
/// Digits of a TOTP code (what authenticator apps show by default).
pub const TOTP_DIGITS: usize = 6;
/// Steps either side of now that are still accepted (clock drift).
const TOTP_SKEW: u64 = 1;

/// A passcode sent to an address, as the flow keeps it: never the code itself.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SentCode {
    /// Digest (hex) of the salt and the code: HMAC-SHA256 with the data key when one is
    /// configured (so that a copy of the store cannot be searched), else SHA-256.
    pub code_sha256: String,
    /// Random per code, so equal codes do not hash alike.
    pub salt: String,
    /// When the code stops working (ms since the epoch).
    pub expires_at_ms: u64,
    /// Codes sent so far for this challenge (the first and the resends).
    pub sends: u32,
    /// When the last one was sent (ms since the epoch).
    pub last_sent_ms: u64,
}

impl std::fmt::Debug for SentCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The hash of a six-digit code is as good as the code: never in logs.
        f.debug_struct("SentCode")
            .field("expires_at_ms", &self.expires_at_ms)
            .field("sends", &self.sends)
            .finish_non_exhaustive()
    }
}

/// A fresh random code of `digits` digits.
pub fn random_code(digits: u32) -> String {
    let mut rng = rand::rng();
    (0..digits)
        .map(|_| char::from(b'0' + rng.random_range(0..10u8)))
        .collect()
}

fn digest(salt: &str, code: &str, key: Option<&DataKey>) -> String {
    let input = format!("{salt}\u{0}{code}");
    match key.and_then(|key| key.mac(input.as_bytes())) {
        Some(mac) => hex::encode(mac),
        None => hex::encode(Sha256::digest(input.as_bytes())),
    }
}

impl SentCode {
    /// Remembers `code` (hashed) as sent at `now_ms`, valid for `ttl_ms`.
    pub fn new(code: &str, now_ms: u64, ttl_ms: u64, sends: u32, key: Option<&DataKey>) -> Self {
        let salt = crate::ids::random_alphanumeric(16);
        Self {
            code_sha256: digest(&salt, code, key),
            salt,
            expires_at_ms: now_ms + ttl_ms,
            sends,
            last_sent_ms: now_ms,
        }
    }

    /// Whether `presented` is the code and still valid, compared in constant time.
    pub fn accepts(&self, presented: &str, now_ms: u64, key: Option<&DataKey>) -> bool {
        let presented = digest(&self.salt, presented.trim(), key);
        now_ms < self.expires_at_ms
            && bool::from(presented.as_bytes().ct_eq(self.code_sha256.as_bytes()))
    }
}

/// A new TOTP secret: 160 random bits (RFC 4226's recommendation), base32.
pub fn new_totp_secret() -> String {
    let bytes: [u8; 20] = rand::rng().random();
    match (Secret::Raw(bytes.to_vec())).to_encoded() {
        Secret::Encoded(encoded) => encoded,
        Secret::Raw(_) => String::new(),
    }
}

fn totp(secret_base32: &str, issuer: Option<&str>, account: &str) -> Option<TOTP> {
    let bytes = Secret::Encoded(secret_base32.to_owned()).to_bytes().ok()?;
    // The otpauth label forbids `:` in the issuer and the account.
    let clean = |text: &str| text.replace(':', " ");
    TOTP::new(
        Algorithm::SHA1,
        TOTP_DIGITS,
        0,
        TOTP_STEP,
        bytes,
        issuer.map(clean),
        clean(account),
    )
    .ok()
}

/// The `otpauth://totp/...` URI an authenticator app scans.
pub fn key_uri(secret_base32: &str, issuer: &str, account: &str) -> Option<String> {
    totp(secret_base32, Some(issuer), account).map(|totp| totp.get_url())
}

/// The time step (`unix / 30`) whose code `presented` is, within the allowed drift;
/// `None` when it matches none. The caller refuses a step already used.
pub fn totp_step(secret_base32: &str, presented: &str, unix_secs: u64) -> Option<u64> {
    let totp = totp(secret_base32, None, "assent")?;
    let presented = presented.trim();
    if presented.len() != TOTP_DIGITS {
        return None;
    }
    let now_step = unix_secs / TOTP_STEP;
    (now_step.saturating_sub(TOTP_SKEW)..=now_step + TOTP_SKEW).find(|step| {
        let expected = totp.generate(step * TOTP_STEP);
        bool::from(expected.as_bytes().ct_eq(presented.as_bytes()))
    })
}

/// The current code of a secret (for the device simulator and tests).
pub fn totp_now(secret_base32: &str, unix_secs: u64) -> Option<String> {
    totp(secret_base32, None, "assent").map(|totp| totp.generate(unix_secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sent_code_is_stored_hashed_and_expires() {
        let code = random_code(6);
        assert_eq!(code.len(), 6);
        let sent = SentCode::new(&code, 1_000, 60_000, 1, None);
        assert!(!sent.code_sha256.contains(&code));
        assert!(sent.accepts(&code, 2_000, None));
        assert!(!sent.accepts("not it", 2_000, None));
        assert!(!sent.accepts(&code, 61_000, None), "expired");
        let key = DataKey::from_bytes([3; 32]);
        let keyed = SentCode::new(&code, 1_000, 60_000, 1, Some(&key));
        assert!(keyed.accepts(&code, 2_000, Some(&key)));
        assert!(
            !keyed.accepts(&code, 2_000, None),
            "the digest needs the key"
        );
    }

    #[test]
    fn totp_codes_match_their_step_within_the_drift() {
        let secret = new_totp_secret();
        let now = 1_800_000_000;
        let code = totp_now(&secret, now).unwrap();
        assert_eq!(totp_step(&secret, &code, now), Some(now / TOTP_STEP));
        assert_eq!(
            totp_step(&secret, &code, now + TOTP_STEP),
            Some(now / TOTP_STEP),
            "one step of drift is accepted"
        );
        assert_eq!(totp_step(&secret, &code, now + 3 * TOTP_STEP), None);
        assert_eq!(totp_step(&secret, "12345", now), None);
        let uri = key_uri(&secret, "assent: Demo", "alice").unwrap();
        assert!(uri.starts_with("otpauth://totp/"), "{uri}");
        assert!(uri.contains(&format!("secret={secret}")), "{uri}");
    }
}
