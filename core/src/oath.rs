//! OATH hardware tokens: HOTP (RFC 4226) and TOTP (RFC 6238) key fobs imported by an
//! operator by serial and seed. Codes are computed with `totp-rs` (HOTP is its TOTP with a
//! one-second step, read at "time" = the counter); the HOTP counter and the last TOTP step
//! only move forward, so a code works once.

use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;
use totp_rs::{Algorithm, Secret, TOTP};

use crate::Adapter;
use crate::error::{AdapterError, FlowError};
use crate::ids::DeviceId;
use crate::otp_device::{self, OtpDevice};
use crate::policy::Method;
use crate::user::UserId;
use crate::{counter, keys, sealing};

/// The shortest seed accepted (80 bits: what RFC 4226 allows at the least).
const MIN_SEED_BYTES: usize = 10;
/// The longest seed accepted.
const MAX_SEED_BYTES: usize = 64;
/// The longest serial.
const MAX_SERIAL_LEN: usize = 64;
/// Seconds per step when an import names none.
const DEFAULT_PERIOD: u64 = 30;

/// HOTP (event-based) or TOTP (time-based).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OathKind {
    /// A code per button press, by counter.
    Hotp,
    /// A code per time step.
    Totp,
}

/// The HMAC hash.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum OathAlgorithm {
    /// HMAC-SHA1 (most tokens).
    Sha1,
    /// HMAC-SHA256.
    Sha256,
    /// HMAC-SHA512.
    Sha512,
}

/// How an imported seed is written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SeedEncoding {
    /// Hexadecimal (what token vendors' seed files hold).
    #[default]
    Hex,
    /// Base32 (RFC 4648).
    Base32,
}

/// An OATH token as stored.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OathToken {
    /// The serial printed on the token.
    pub serial: String,
    /// HOTP or TOTP.
    pub kind: OathKind,
    /// The HMAC hash.
    pub algorithm: OathAlgorithm,
    /// Digits of a code (6 or 8).
    pub digits: u32,
    /// Seconds per step (TOTP).
    pub period: u64,
    /// The seed, hex, sealed with the data key.
    pub seed: String,
}

/// `POST /admin/v1/users/{userId}/oath-tokens`: a token to import.
#[derive(Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OathImport {
    /// The serial printed on the token.
    pub serial: String,
    /// The seed.
    pub seed: String,
    /// How `seed` is written: `hex` (default) or `base32`.
    #[serde(default)]
    pub seed_encoding: SeedEncoding,
    /// `hotp` or `totp`.
    pub kind: OathKind,
    /// `SHA1` (default), `SHA256` or `SHA512`.
    #[serde(default = "sha1")]
    pub algorithm: OathAlgorithm,
    /// 6 (default) or 8.
    #[serde(default = "six")]
    pub digits: u32,
    /// Seconds per step, TOTP only (default 30).
    #[serde(default)]
    pub period: Option<u64>,
}

fn sha1() -> OathAlgorithm {
    OathAlgorithm::Sha1
}

fn six() -> u32 {
    6
}

impl std::fmt::Debug for OathToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The seed is unsealed when no data key is configured: never in logs.
        f.debug_struct("OathToken")
            .field("serial", &self.serial)
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for OathImport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OathImport")
            .field("serial", &self.serial)
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

/// `POST /admin/v1/users/{userId}/oath-tokens/{deviceId}/resync`: two consecutive codes.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OathResync {
    /// A code the token shows.
    pub first: String,
    /// The code it shows next.
    pub second: String,
}

/// The code of `seed` at HOTP counter `counter` (for TOTP: the step number).
pub fn code(seed: &[u8], algorithm: OathAlgorithm, digits: u32, counter: u64) -> Option<String> {
    let algorithm = match algorithm {
        OathAlgorithm::Sha1 => Algorithm::SHA1,
        OathAlgorithm::Sha256 => Algorithm::SHA256,
        OathAlgorithm::Sha512 => Algorithm::SHA512,
    };
    // A one-second step makes "time" the counter: TOTP is HOTP of time / step.
    let hotp = TOTP::new_unchecked(
        algorithm,
        usize::try_from(digits).ok()?,
        0,
        1,
        seed.to_vec(),
        None,
        String::new(),
    );
    Some(hotp.generate(counter))
}

/// Decodes a seed as `encoding` says; the error says what is wrong.
pub fn parse_seed(raw: &str, encoding: SeedEncoding) -> Result<Vec<u8>, AdapterError> {
    let raw: String = raw.chars().filter(|c| !c.is_whitespace()).collect();
    let bytes = match encoding {
        SeedEncoding::Hex => hex::decode(&raw).ok(),
        SeedEncoding::Base32 => {
            Secret::Encoded(raw.to_ascii_uppercase().trim_end_matches('=').to_owned())
                .to_bytes()
                .ok()
        }
    }
    .ok_or_else(|| {
        AdapterError::Invalid(format!(
            "`seed` is not {}",
            match encoding {
                SeedEncoding::Hex => "hex",
                SeedEncoding::Base32 => "base32",
            }
        ))
    })?;
    if !(MIN_SEED_BYTES..=MAX_SEED_BYTES).contains(&bytes.len()) {
        return Err(AdapterError::Invalid(format!(
            "`seed` must be {MIN_SEED_BYTES} to {MAX_SEED_BYTES} bytes"
        )));
    }
    Ok(bytes)
}

/// Checks an import; the token to store (its seed not sealed yet) and the seed.
fn validate(import: &OathImport) -> Result<(String, Vec<u8>), AdapterError> {
    let serial = import.serial.trim();
    if serial.is_empty()
        || serial.len() > MAX_SERIAL_LEN
        || !serial
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
    {
        return Err(AdapterError::Invalid(format!(
            "`serial` must be 1 to {MAX_SERIAL_LEN} letters, digits, `-`, `_` or `.`"
        )));
    }
    if !matches!(import.digits, 6 | 8) {
        return Err(AdapterError::Invalid("`digits` must be 6 or 8".to_owned()));
    }
    match (import.kind, import.period) {
        (OathKind::Hotp, Some(_)) => {
            return Err(AdapterError::Invalid(
                "`period` is for TOTP tokens only".to_owned(),
            ));
        }
        (OathKind::Totp, Some(period)) if !(10..=300).contains(&period) => {
            return Err(AdapterError::Invalid(
                "`period` must be 10 to 300 seconds".to_owned(),
            ));
        }
        _ => {}
    }
    Ok((
        serial.to_owned(),
        parse_seed(&import.seed, import.seed_encoding)?,
    ))
}

/// Whether `presented` is the token's code at `counter`, compared in constant time.
fn matches(token: &OathToken, seed: &[u8], counter: u64, presented: &str) -> bool {
    code(seed, token.algorithm, token.digits, counter)
        .is_some_and(|expected| bool::from(expected.as_bytes().ct_eq(presented.as_bytes())))
}

impl Adapter {
    /// Imports an OATH token for `user`: one serial belongs to one token in the whole
    /// service. Nothing is kept when the import is refused.
    pub async fn import_oath_token(
        &self,
        user: &UserId,
        import: OathImport,
    ) -> Result<OtpDevice, AdapterError> {
        let (serial, seed) = validate(&import)?;
        self.user(user).await?;
        let token = OathToken {
            serial: serial.clone(),
            kind: import.kind,
            algorithm: import.algorithm,
            digits: import.digits,
            period: match import.kind {
                OathKind::Totp => import.period.unwrap_or(DEFAULT_PERIOD),
                OathKind::Hotp => 0,
            },
            seed: sealing::seal(self.data_key(), &hex::encode(&seed))?,
        };
        let device = OtpDevice {
            id: DeviceId::generate(),
            method: Method::OathToken,
            address: None,
            totp_secret: None,
            yubikey: None,
            oath: Some(token),
            webauthn: None,
            paired_at: self.clock().now_secs(),
        };
        otp_device::add_claimed(
            self.store(),
            user,
            device,
            &keys::oath_serial(&serial),
            "a token with this serial is already imported",
        )
        .await
    }

    /// The token and its seed.
    fn oath_seed<'a>(
        &self,
        device: &'a OtpDevice,
    ) -> Result<Option<(&'a OathToken, Vec<u8>)>, AdapterError> {
        let Some(token) = &device.oath else {
            return Ok(None);
        };
        let seed = hex::decode(sealing::open(self.data_key(), &token.seed)?)
            .map_err(|_| AdapterError::internal("an OATH token's stored seed is malformed"))?;
        Ok(Some((token, seed)))
    }

    /// Checks a code of an OATH token: HOTP within the look-ahead window past the last
    /// accepted counter, TOTP within the drift around now and after the last accepted
    /// step; the counter moves to the accepted one, so the code works once.
    pub(crate) async fn check_oath(
        &self,
        device: &OtpDevice,
        presented: &str,
    ) -> Result<bool, AdapterError> {
        let Some((token, seed)) = self.oath_seed(device)? else {
            return Ok(false);
        };
        if presented.len() != token.digits as usize {
            return Ok(false);
        }
        let config = &self.config().tokens;
        let key = keys::oath_counter(&device.id);
        let found = match token.kind {
            OathKind::Hotp => {
                let start = counter::last(self.store(), &key)
                    .await?
                    .map_or(0, |last| last + 1);
                (start..=start + config.hotp_look_ahead)
                    .find(|at| matches(token, &seed, *at, presented))
            }
            OathKind::Totp => {
                let now = self.clock().now_secs() / token.period.max(1);
                (now.saturating_sub(config.totp_drift_steps)..=now + config.totp_drift_steps)
                    .find(|step| matches(token, &seed, *step, presented))
            }
        };
        let Some(found) = found else {
            return Ok(false);
        };
        if !counter::advance(self.store(), &key, found).await? {
            return Err(FlowError::OtpReplayed.into());
        }
        Ok(true)
    }

    /// Resynchronises a user's HOTP token that ran ahead of the look-ahead window: two
    /// consecutive codes within the wider resync window past the last accepted counter;
    /// the counter moves past the second.
    pub async fn resync_oath_token(
        &self,
        user: &UserId,
        device: &str,
        resync: OathResync,
    ) -> Result<(), AdapterError> {
        let id = DeviceId::parse(device).ok_or(AdapterError::NotFound("device"))?;
        let device = otp_device::list(self.store(), user)
            .await?
            .into_iter()
            .find(|known| known.id == id && known.method == Method::OathToken)
            .ok_or(AdapterError::NotFound("device"))?;
        let Some((token, seed)) = self.oath_seed(&device)? else {
            return Err(AdapterError::NotFound("device"));
        };
        if token.kind != OathKind::Hotp {
            return Err(AdapterError::Invalid(
                "only HOTP tokens are resynchronised".to_owned(),
            ));
        }
        let (first, second) = (resync.first.trim(), resync.second.trim());
        let key = keys::oath_counter(&device.id);
        let start = counter::last(self.store(), &key)
            .await?
            .map_or(0, |last| last + 1);
        let window = self.config().tokens.hotp_resync_window;
        let found = (start..=start + window)
            .find(|at| matches(token, &seed, *at, first) && matches(token, &seed, at + 1, second));
        let Some(found) = found else {
            return Err(AdapterError::Invalid(
                "the codes are not two consecutive codes of this token within the resync window"
                    .to_owned(),
            ));
        };
        if !counter::advance(self.store(), &key, found + 1).await? {
            return Err(AdapterError::Conflict(
                "the token was used meanwhile; retry with new codes".to_owned(),
            ));
        }
        Ok(())
    }
}

/// Frees what a removed token held: its serial and its counter.
pub(crate) async fn forget(
    store: &dyn crate::store::Store,
    device: &OtpDevice,
) -> Result<(), AdapterError> {
    if let Some(token) = &device.oath {
        store.delete(&keys::oath_serial(&token.serial)).await?;
        store.delete(&keys::oath_counter(&device.id)).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hotp_codes_are_those_of_rfc_4226_appendix_d() {
        let seed = b"12345678901234567890";
        let expected = [
            "755224", "287082", "359152", "969429", "338314", "254676", "287922", "162583",
            "399871", "520489",
        ];
        for (counter, expected) in expected.iter().enumerate() {
            assert_eq!(
                code(seed, OathAlgorithm::Sha1, 6, counter as u64).as_deref(),
                Some(*expected),
                "counter {counter}"
            );
        }
    }

    #[test]
    fn totp_codes_are_those_of_rfc_6238_appendix_b() {
        // Time 59 s, step 30: step 1; the seeds are the RFC's, per hash.
        let sha256 = b"12345678901234567890123456789012";
        let sha512 = b"1234567890123456789012345678901234567890123456789012345678901234";
        assert_eq!(
            code(b"12345678901234567890", OathAlgorithm::Sha1, 8, 1).as_deref(),
            Some("94287082")
        );
        assert_eq!(
            code(sha256, OathAlgorithm::Sha256, 8, 1).as_deref(),
            Some("46119246")
        );
        assert_eq!(
            code(sha512, OathAlgorithm::Sha512, 8, 1).as_deref(),
            Some("90693936")
        );
    }

    #[test]
    fn seeds_decode_as_hex_or_base32() {
        let hex = parse_seed(
            "3132333435363738393031323334353637383930",
            SeedEncoding::Hex,
        )
        .unwrap();
        assert_eq!(hex, b"12345678901234567890");
        let base32 = parse_seed("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ", SeedEncoding::Base32).unwrap();
        assert_eq!(base32, hex);
        assert!(parse_seed("zz", SeedEncoding::Hex).is_err());
        assert!(parse_seed("3132", SeedEncoding::Hex).is_err(), "too short");
        assert!(parse_seed("1!", SeedEncoding::Base32).is_err());
    }
}
