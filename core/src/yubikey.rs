//! YubiKey OTP, validated here (no Yubico cloud): keys are imported by an operator with
//! their public id, private id and AES-128 key; an OTP is the public id and a 16-byte
//! token, both modhex, the token AES-encrypted (one block, through OpenSSL) and carrying
//! the private id, counters and a CRC.

use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

use crate::Adapter;
use crate::error::{AdapterError, FlowError};
use crate::ids::DeviceId;
use crate::otp_device::{self, OtpDevice};
use crate::policy::Method;
use crate::user::UserId;
use crate::{counter, keys, sealing};

/// The modhex alphabet: the keys that sit alike on most keyboard layouts, for 0 to f.
const MODHEX: &[u8; 16] = b"cbdefghijklnrtuv";
/// Characters of a public id (6 bytes, modhex).
pub const PUBLIC_ID_LEN: usize = 12;
/// Characters of an OTP: the public id and the 16-byte token, modhex.
pub const OTP_LEN: usize = PUBLIC_ID_LEN + 32;
/// What the CRC-16 of a whole valid token (its CRC included) comes to (ISO 13239).
const CRC_RESIDUE: u16 = 0xf0b8;

/// A YubiKey as stored: its public id, and its private id and AES key sealed.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct YubikeyKeys {
    /// The public id (modhex), which starts each of its OTPs.
    pub public_id: String,
    /// `<AES key hex>:<private id hex>`, sealed with the data key.
    pub secret: String,
}

/// `POST /admin/v1/users/{userId}/yubikeys`: a key to import.
#[derive(Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct YubikeyImport {
    /// Public id: 12 modhex characters.
    pub public_id: String,
    /// Private id: 6 bytes, hex.
    pub private_id: String,
    /// AES-128 key: 16 bytes, hex.
    pub aes_key: String,
}

impl std::fmt::Debug for YubikeyKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Unsealed when no data key is configured: never in logs.
        f.debug_struct("YubikeyKeys")
            .field("public_id", &self.public_id)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for YubikeyImport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("YubikeyImport")
            .field("public_id", &self.public_id)
            .finish_non_exhaustive()
    }
}

/// Decodes modhex (either case); `None` for any other character or an odd length.
pub fn modhex_decode(text: &str) -> Option<Vec<u8>> {
    let nibble = |c: u8| {
        MODHEX
            .iter()
            .position(|m| *m == c.to_ascii_lowercase())
            .map(|at| at as u8)
    };
    let bytes = text.as_bytes();
    if !bytes.len().is_multiple_of(2) {
        return None;
    }
    bytes
        .chunks(2)
        .map(|pair| Some((nibble(pair[0])? << 4) | nibble(pair[1])?))
        .collect()
}

/// Encodes bytes as modhex.
pub fn modhex_encode(bytes: &[u8]) -> String {
    bytes
        .iter()
        .flat_map(|byte| [byte >> 4, byte & 0x0f])
        .map(|nibble| char::from(MODHEX[usize::from(nibble)]))
        .collect()
}

/// Whether `text` has the shape of a YubiKey OTP (44 modhex characters).
pub fn looks_like_otp(text: &str) -> bool {
    text.len() == OTP_LEN && modhex_decode(text).is_some()
}

/// CRC-16 as ISO 13239 (and the YubiKey) computes it.
pub fn crc16(data: &[u8]) -> u16 {
    let mut crc: u16 = 0xffff;
    for byte in data {
        crc ^= u16::from(*byte);
        for _ in 0..8 {
            let carry = crc & 1;
            crc >>= 1;
            if carry != 0 {
                crc ^= 0x8408;
            }
        }
    }
    crc
}

/// Runs one AES-128 block through OpenSSL, encrypting or decrypting, without padding.
pub fn aes_block(key: &[u8; 16], block: &[u8; 16], encrypt: bool) -> Option<[u8; 16]> {
    use openssl::symm::{Cipher, Crypter, Mode};
    let mode = if encrypt {
        Mode::Encrypt
    } else {
        Mode::Decrypt
    };
    let mut crypter = Crypter::new(Cipher::aes_128_ecb(), mode, key, None).ok()?;
    crypter.pad(false);
    // OpenSSL wants room for one block more than it is given.
    let mut out = [0u8; 32];
    let written = crypter.update(block, &mut out).ok()?;
    let rest = crypter.finalize(&mut out[written..]).ok()?;
    out[..16].try_into().ok().filter(|_| written + rest == 16)
}

/// The counters of a token whose CRC and private id check out, as one number that grows
/// with each OTP: the session counter (15 bits, at each power-up) above the use counter
/// (8 bits, within a session).
fn counters(plain: &[u8; 16]) -> u64 {
    let session = u64::from(u16::from_le_bytes([plain[6], plain[7]]) & 0x7fff);
    (session << 8) | u64::from(plain[11])
}

/// Opens `token` (16 bytes) with the key's secrets: its counters when the CRC holds and
/// the private id is the key's (compared in constant time), else `None`.
fn open_token(token: &[u8; 16], aes_key: &[u8; 16], private_id: &[u8]) -> Option<u64> {
    let plain = aes_block(aes_key, token, false)?;
    let private_matches = bool::from(plain[..6].ct_eq(private_id));
    (crc16(&plain) == CRC_RESIDUE && private_matches).then(|| counters(&plain))
}

fn hex_field<const N: usize>(field: &str, raw: &str) -> Result<[u8; N], AdapterError> {
    hex::decode(raw.trim())
        .ok()
        .and_then(|bytes| bytes.try_into().ok())
        .ok_or_else(|| AdapterError::Invalid(format!("`{field}` must be {N} bytes, hex")))
}

impl Adapter {
    /// Imports a YubiKey for `user`: one public id belongs to one key in the whole
    /// service. Nothing is kept when the import is refused.
    pub async fn import_yubikey(
        &self,
        user: &UserId,
        import: YubikeyImport,
    ) -> Result<OtpDevice, AdapterError> {
        let public_id = import.public_id.trim().to_ascii_lowercase();
        if public_id.len() != PUBLIC_ID_LEN || modhex_decode(&public_id).is_none() {
            return Err(AdapterError::Invalid(format!(
                "`publicId` must be {PUBLIC_ID_LEN} modhex characters ({})",
                std::str::from_utf8(MODHEX).unwrap_or_default()
            )));
        }
        let private_id: [u8; 6] = hex_field("privateId", &import.private_id)?;
        let aes_key: [u8; 16] = hex_field("aesKey", &import.aes_key)?;
        self.user(user).await?;
        let secret = format!("{}:{}", hex::encode(aes_key), hex::encode(private_id));
        let device = OtpDevice {
            id: DeviceId::generate(),
            method: Method::Yubikey,
            address: None,
            totp_secret: None,
            yubikey: Some(YubikeyKeys {
                public_id: public_id.clone(),
                secret: sealing::seal(self.data_key(), &secret)?,
            }),
            oath: None,
            webauthn: None,
            paired_at: self.clock().now_secs(),
        };
        otp_device::add_claimed(
            self.store(),
            user,
            device,
            &keys::yubikey_public_id(&public_id),
            "a YubiKey with this public id is already imported",
        )
        .await
    }

    /// Checks a YubiKey OTP against `device`: the public id, the token's CRC and private
    /// id, then its counters, which must pass the last accepted ones (a replay or an older
    /// OTP is refused). `false` when the OTP is not this key's.
    pub(crate) async fn check_yubikey(
        &self,
        device: &OtpDevice,
        presented: &str,
    ) -> Result<bool, AdapterError> {
        let Some(keys) = &device.yubikey else {
            return Ok(false);
        };
        let presented = presented.to_ascii_lowercase();
        if !looks_like_otp(&presented) {
            return Ok(false);
        }
        let (public_id, token) = presented.split_at(PUBLIC_ID_LEN);
        if public_id != keys.public_id {
            return Ok(false);
        }
        let Some(token) = modhex_decode(token).and_then(|bytes| <[u8; 16]>::try_from(bytes).ok())
        else {
            return Ok(false);
        };
        let secret = sealing::open(self.data_key(), &keys.secret)?;
        let (aes_key, private_id) = secret
            .split_once(':')
            .and_then(|(aes, private)| Some((hex::decode(aes).ok()?, hex::decode(private).ok()?)))
            .ok_or_else(|| AdapterError::internal("a YubiKey's stored secret is malformed"))?;
        let aes_key: [u8; 16] = aes_key
            .try_into()
            .map_err(|_| AdapterError::internal("a YubiKey's stored AES key is malformed"))?;
        let Some(counters) = open_token(&token, &aes_key, &private_id) else {
            return Ok(false);
        };
        if !counter::advance(self.store(), &keys::yubikey_counter(&device.id), counters).await? {
            return Err(FlowError::OtpReplayed.into());
        }
        Ok(true)
    }
}

/// Frees what a removed YubiKey held: its public id and its counters.
pub(crate) async fn forget(
    store: &dyn crate::store::Store,
    device: &OtpDevice,
) -> Result<(), AdapterError> {
    if let Some(keys) = &device.yubikey {
        store
            .delete(&keys::yubikey_public_id(&keys.public_id))
            .await?;
        store.delete(&keys::yubikey_counter(&device.id)).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A token as a YubiKey builds it, CRC last.
    fn token(private_id: [u8; 6], session: u16, use_counter: u8) -> [u8; 16] {
        let mut plain = [0u8; 16];
        plain[..6].copy_from_slice(&private_id);
        plain[6..8].copy_from_slice(&session.to_le_bytes());
        plain[8..11].copy_from_slice(&[1, 2, 3]);
        plain[11] = use_counter;
        plain[12..14].copy_from_slice(&[0x42, 0x17]);
        let crc = !crc16(&plain[..14]);
        plain[14..].copy_from_slice(&crc.to_le_bytes());
        plain
    }

    #[test]
    fn modhex_round_trips_and_refuses_other_characters() {
        let bytes = [0x00, 0x12, 0x9a, 0xff];
        let text = modhex_encode(&bytes);
        assert_eq!(text, "ccbdklvv");
        assert_eq!(modhex_decode(&text).unwrap(), bytes);
        assert_eq!(modhex_decode("CCBDKLVV").unwrap(), bytes);
        assert!(modhex_decode("ccbdlnva").is_none(), "a is not modhex");
        assert!(modhex_decode("ccb").is_none(), "odd length");
    }

    #[test]
    fn a_token_opens_with_its_key_and_private_id_only() {
        let (key, private_id) = ([9u8; 16], [1, 2, 3, 4, 5, 6]);
        let plain = token(private_id, 3, 7);
        assert_eq!(crc16(&plain), CRC_RESIDUE);
        let sealed = aes_block(&key, &plain, true).unwrap();
        assert_ne!(sealed, plain);
        assert_eq!(open_token(&sealed, &key, &private_id), Some((3 << 8) | 7));
        assert_eq!(
            open_token(&sealed, &[8u8; 16], &private_id),
            None,
            "wrong key"
        );
        assert_eq!(open_token(&sealed, &key, &[0; 6]), None, "wrong private id");
        let mut corrupt = plain;
        corrupt[14] ^= 1;
        let corrupt = aes_block(&key, &corrupt, true).unwrap();
        assert_eq!(open_token(&corrupt, &key, &private_id), None, "bad CRC");
        assert!(
            open_token(
                &aes_block(&key, &token(private_id, 4, 0), true).unwrap(),
                &key,
                &private_id
            ) > open_token(&sealed, &key, &private_id),
            "a new session counts above any use of an older one"
        );
    }
}
