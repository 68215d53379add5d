//! A user's passcode devices: SMS, voice and email addresses, and authenticator apps. They
//! never authenticate on the Device API (no key), so they live apart from paired mobile
//! devices: one record per user, changed by compare-and-set.

use serde::{Deserialize, Serialize};

use crate::error::AdapterError;
use crate::ids::DeviceId;
use crate::keys;
use crate::policy::Method;
use crate::store::{Attempt, Store, StoreError, Ttl, retry_lost_races};
use crate::user::UserId;

/// What a change of a user's passcode devices says when it keeps losing races.
const DEVICES_CONTENDED: &str = "the user's devices are changing concurrently; retry";
/// The most passcode devices one user may have.
pub const MAX_PER_USER: usize = 10;

/// A passcode device.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OtpDevice {
    /// Its id.
    pub id: DeviceId,
    /// SMS, voice, email, TOTP, YubiKey or OATH token.
    pub method: Method,
    /// The phone number or email address codes go to (not for TOTP).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// The authenticator app's shared secret, base32 (TOTP only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub totp_secret: Option<String>,
    /// A YubiKey's public id and sealed keys (YUBIKEY only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub yubikey: Option<crate::yubikey::YubikeyKeys>,
    /// An OATH token's serial, parameters and sealed seed (OATH_TOKEN only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oath: Option<crate::oath::OathToken>,
    /// A WebAuthn credential (SECURITY_KEY and PLATFORM only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webauthn: Option<crate::webauthn_registration::WebauthnKey>,
    /// When it was enrolled (seconds since the epoch).
    pub paired_at: u64,
}

/// A user's passcode devices, oldest first.
pub async fn list(store: &dyn Store, user: &UserId) -> Result<Vec<OtpDevice>, AdapterError> {
    Ok(read(store, user)
        .await?
        .map(|(list, _)| list)
        .unwrap_or_default())
}

async fn read(
    store: &dyn Store,
    user: &UserId,
) -> Result<Option<(Vec<OtpDevice>, u64)>, AdapterError> {
    match store.get(&keys::otp_devices(user)).await? {
        Some(record) => Ok(Some((decode(&record)?, record.version))),
        None => Ok(None),
    }
}

/// The passcode devices a user's record holds.
pub(crate) fn decode(record: &crate::store::Record) -> Result<Vec<OtpDevice>, AdapterError> {
    serde_json::from_slice(&record.value).map_err(AdapterError::internal)
}

/// Whose a claimed token or credential is (the value of its claim).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Claim {
    /// The user holding it.
    pub user: UserId,
    /// The device it is.
    pub device: DeviceId,
}

/// The owner of `claim` (a token's public id or serial, a credential id), if claimed.
pub(crate) async fn claimed(store: &dyn Store, claim: &str) -> Result<Option<Claim>, AdapterError> {
    match store.get(claim).await? {
        Some(record) => serde_json::from_slice(&record.value)
            .map(Some)
            .map_err(AdapterError::internal),
        None => Ok(None),
    }
}

/// Adds a device that must be unique across the service (a token an operator imports, a
/// WebAuthn credential), its `claim` (the key of its public id, serial or credential id)
/// taken first, so that one is never added twice (a `Conflict` saying `taken`); the claim
/// is released when the device cannot be added. The user's first device becomes their
/// primary.
pub(crate) async fn add_claimed(
    store: &dyn Store,
    user: &UserId,
    device: OtpDevice,
    claim: &str,
    taken: &str,
) -> Result<OtpDevice, AdapterError> {
    let owner = Claim {
        user: user.clone(),
        device: device.id.clone(),
    };
    let owner = serde_json::to_vec(&owner).map_err(AdapterError::internal)?;
    if !store.insert(claim, &owner, Ttl::Persist).await? {
        return Err(AdapterError::Conflict(taken.to_owned()));
    }
    match add(store, user, device).await {
        Ok(device) => {
            crate::device::claim_primary(store, user, &device.id).await?;
            Ok(device)
        }
        Err(error) => {
            store.delete(claim).await?;
            Err(error)
        }
    }
}

/// Adds a device; the same method and address twice is one device (the existing one wins).
pub async fn add(
    store: &dyn Store,
    user: &UserId,
    device: OtpDevice,
) -> Result<OtpDevice, AdapterError> {
    let (key, device) = (&keys::otp_devices(user), &device);
    retry_lost_races(DEVICES_CONTENDED, move || async move {
        let current = read(store, user).await?;
        let mut list = current
            .as_ref()
            .map(|(list, _)| list.clone())
            .unwrap_or_default();
        if device.method.is_sent()
            && let Some(existing) = list
                .iter()
                .find(|known| known.method == device.method && known.address == device.address)
        {
            return Ok(Attempt::Done(existing.clone()));
        }
        if list.len() >= MAX_PER_USER {
            return Err(AdapterError::Invalid(format!(
                "a user may have at most {MAX_PER_USER} passcode devices"
            )));
        }
        list.push(device.clone());
        let value = serde_json::to_vec(&list).map_err(AdapterError::internal)?;
        let written = match current {
            None => store.insert(key, &value, Ttl::Persist).await,
            Some((_, version)) => match store
                .transition(key, version, &value, Ttl::Keep, None)
                .await
            {
                Ok(_) => Ok(true),
                Err(StoreError::Conflict | StoreError::NotFound) => Ok(false),
                Err(error) => Err(error),
            },
        }?;
        Ok(match written {
            true => Attempt::Done(device.clone()),
            false => Attempt::Lost(()),
        })
    })
    .await
}

/// Removes a device (an imported token's public id or serial is free again); `false`
/// when the user had no such device.
pub async fn remove(store: &dyn Store, user: &UserId, id: &DeviceId) -> Result<bool, AdapterError> {
    let removed = remove_listed(store, user, id).await?;
    if let Some(device) = &removed {
        crate::yubikey::forget(store, device).await?;
        crate::oath::forget(store, device).await?;
        crate::webauthn_credential::forget(store, device).await?;
    }
    Ok(removed.is_some())
}

async fn remove_listed(
    store: &dyn Store,
    user: &UserId,
    id: &DeviceId,
) -> Result<Option<OtpDevice>, AdapterError> {
    let key = &keys::otp_devices(user);
    retry_lost_races(DEVICES_CONTENDED, move || async move {
        let Some((mut list, version)) = read(store, user).await? else {
            return Ok(Attempt::Done(None));
        };
        let Some(at) = list.iter().position(|device| device.id == *id) else {
            return Ok(Attempt::Done(None));
        };
        let removed = list.remove(at);
        let value = serde_json::to_vec(&list).map_err(AdapterError::internal)?;
        match store
            .transition(key, version, &value, Ttl::Keep, None)
            .await
        {
            Ok(_) => Ok(Attempt::Done(Some(removed))),
            Err(StoreError::Conflict) => Ok(Attempt::Lost(())),
            Err(StoreError::NotFound) => Ok(Attempt::Done(None)),
            Err(error) => Err(error.into()),
        }
    })
    .await
}

/// Changes one device in place (compare-and-set on the user's record); a device no
/// longer there is left alone.
pub(crate) async fn modify(
    store: &dyn Store,
    user: &UserId,
    id: &DeviceId,
    change: impl Fn(&mut OtpDevice),
) -> Result<(), AdapterError> {
    let (key, change) = (&keys::otp_devices(user), &change);
    retry_lost_races(DEVICES_CONTENDED, move || async move {
        let Some((mut list, version)) = read(store, user).await? else {
            return Ok(Attempt::Done(()));
        };
        let Some(device) = list.iter_mut().find(|device| device.id == *id) else {
            return Ok(Attempt::Done(()));
        };
        change(device);
        let value = serde_json::to_vec(&list).map_err(AdapterError::internal)?;
        match store
            .transition(key, version, &value, Ttl::Keep, None)
            .await
        {
            Ok(_) | Err(StoreError::NotFound) => Ok(Attempt::Done(())),
            Err(StoreError::Conflict) => Ok(Attempt::Lost(())),
            Err(error) => Err(error.into()),
        }
    })
    .await
}

/// Accepts a TOTP time step for `device` only if it is later than the last one accepted:
/// a code works once, and an older code no longer works once a newer one was used.
/// `false` for a replay.
pub async fn spend_totp_step(
    store: &dyn Store,
    device: &DeviceId,
    step: u64,
) -> Result<bool, AdapterError> {
    // Kept until any step it could refuse is out of the accepted drift anyway.
    let keep = Ttl::Set(std::time::Duration::from_secs(crate::otp::TOTP_STEP * 4));
    let (key, value) = (&keys::totp_last_step(device), &step.to_string());
    retry_lost_races(
        "the passcode is being checked concurrently; retry",
        move || async move {
            let written = match store.get(key).await? {
                None => store.insert(key, value.as_bytes(), keep).await?,
                Some(record) => {
                    let last = std::str::from_utf8(&record.value)
                        .ok()
                        .and_then(|last| last.parse::<u64>().ok())
                        .unwrap_or(u64::MAX);
                    if step <= last {
                        return Ok(Attempt::Done(false));
                    }
                    match store
                        .transition(key, record.version, value.as_bytes(), keep, None)
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
