//! Pairing: the operator (or a registration flow) issues a one-time pairing key for a
//! user; the app consumes it with its public key and becomes a trusted device.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::device::{self, Device, validate_label};
use crate::device_key::PublicDeviceKey;
use crate::error::AdapterError;
use crate::ids::{DeviceId, FlowId, PairingKey};
use crate::keys;
use crate::store::{Attempt, Store, Ttl, retry_lost_races};
use crate::user::UserId;

/// What a pairing key is good for, stored under the key's hash.
#[derive(Serialize, Deserialize)]
struct PairingGrant {
    user_id: UserId,
    /// The registration flow that issued the key, if any: pairing completes it.
    #[serde(default)]
    flow_id: Option<FlowId>,
}

/// A device's request to pair, already parsed.
pub struct PairingRequest {
    /// The one-time key.
    pub pairing_key: String,
    /// The device's public key.
    pub public_key: PublicDeviceKey,
    /// Name the app reports.
    pub name: String,
    /// Operating system.
    pub os: String,
    /// Operating system version.
    pub os_version: String,
    /// Hardware model.
    pub model: String,
}

fn key_hash(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// Issues a one-time pairing key for `user`, valid for `ttl`. Only its hash is stored.
pub async fn issue(
    store: &dyn Store,
    user: &UserId,
    flow: Option<&FlowId>,
    ttl: Duration,
) -> Result<PairingKey, AdapterError> {
    let key = PairingKey::generate();
    let grant = serde_json::to_vec(&PairingGrant {
        user_id: user.clone(),
        flow_id: flow.cloned(),
    })
    .map_err(AdapterError::internal)?;
    if !store
        .insert(
            &keys::pairing_key(&key_hash(key.expose())),
            &grant,
            Ttl::Set(ttl),
        )
        .await?
    {
        return Err(AdapterError::internal("pairing key collision"));
    }
    Ok(key)
}

/// The record of a pairing key for `user` (from `flow`, if any): its key and value. The
/// flow engine writes it with the transition that shows the key.
pub(crate) fn grant_record(
    key: &str,
    user: &UserId,
    flow: Option<&FlowId>,
) -> Result<(String, Vec<u8>), AdapterError> {
    let grant = serde_json::to_vec(&PairingGrant {
        user_id: user.clone(),
        flow_id: flow.cloned(),
    })
    .map_err(AdapterError::internal)?;
    Ok((keys::pairing_key(&key_hash(key)), grant))
}

/// Consumes a pairing key (once, atomically) and returns the device it makes, not saved
/// yet, and the flow the key came from. Everything is checked before the key is
/// consumed, so a malformed request leaves the key usable. `now_ms` stamps the pairing.
pub async fn redeem(
    store: &dyn Store,
    request: PairingRequest,
    otp_seed: Option<String>,
    now_ms: u64,
) -> Result<(Device, Option<FlowId>), AdapterError> {
    for (field, value) in [
        ("name", &request.name),
        ("os", &request.os),
        ("osVersion", &request.os_version),
        ("model", &request.model),
    ] {
        validate_label(field, value)?;
    }
    let Some(key) = PairingKey::parse(&request.pairing_key) else {
        return Err(AdapterError::NotFound("pairing key"));
    };
    let grant = store
        .consume(&keys::pairing_key(&key_hash(key.expose())))
        .await?
        .ok_or(AdapterError::NotFound("pairing key"))?;
    let grant: PairingGrant = serde_json::from_slice(&grant).map_err(AdapterError::internal)?;
    let device = Device {
        id: DeviceId::generate(),
        user_id: grant.user_id,
        name: request.name,
        os: request.os,
        os_version: request.os_version,
        model: request.model,
        nickname: None,
        public_key: request.public_key,
        paired_at: now_ms / 1000,
        paired_at_ms: now_ms,
        also_paired: Vec::new(),
        one_time: false,
        one_time_flow: None,
        otp_seed,
    };
    Ok((device, grant.flow_id))
}

/// Withdraws a pairing key that was not used (its registration flow was canceled).
pub async fn withdraw(store: &dyn Store, key: &str) -> Result<(), AdapterError> {
    store.delete(&keys::pairing_key(&key_hash(key))).await?;
    Ok(())
}

/// Consumes a pairing key for a device that already serves someone else (a shared
/// device): the user it was issued for, and its flow. A key for a user the device already
/// serves is refused without spending it.
pub async fn claim_for_join(
    store: &dyn Store,
    device_id: &DeviceId,
    pairing_key: &str,
) -> Result<(UserId, Option<FlowId>), AdapterError> {
    let Some(key) = PairingKey::parse(pairing_key) else {
        return Err(AdapterError::NotFound("pairing key"));
    };
    let record = keys::pairing_key(&key_hash(key.expose()));
    let grant: PairingGrant = match store.get(&record).await? {
        Some(found) => serde_json::from_slice(&found.value).map_err(AdapterError::internal)?,
        None => return Err(AdapterError::NotFound("pairing key")),
    };
    let (device, _) = device::find_versioned(store, device_id)
        .await?
        .ok_or(AdapterError::NotFound("device"))?;
    if device.serves(&grant.user_id) {
        return Err(AdapterError::Conflict(
            "the device is already paired with this user".to_owned(),
        ));
    }
    if store.consume(&record).await?.is_none() {
        return Err(AdapterError::NotFound("pairing key"));
    }
    Ok((grant.user_id, grant.flow_id))
}

/// Makes a paired device serve one more user.
pub async fn add_user(
    store: &dyn Store,
    device_id: &DeviceId,
    user: &UserId,
) -> Result<Device, AdapterError> {
    retry_lost_races(
        "the device changed concurrently; retry",
        move || async move {
            let (mut device, version) = device::find_versioned(store, device_id)
                .await?
                .ok_or(AdapterError::NotFound("device"))?;
            if !device.serves(user) {
                device.also_paired.push(user.clone());
            }
            match device::update(store, &device, version).await {
                Ok(()) => {
                    store
                        .index_add(
                            &keys::user_devices(user),
                            device.id.as_str(),
                            Ttl::Persist,
                            None,
                        )
                        .await?;
                    Ok(Attempt::Done(device))
                }
                Err(AdapterError::Conflict(_)) => Ok(Attempt::Lost(())),
                Err(error) => Err(error),
            }
        },
    )
    .await
}

/// The flow a pairing key belongs to, read without spending the key: `None` for an
/// unknown key, `Some(None)` for a key issued by the operator.
pub async fn grant_flow(
    store: &dyn Store,
    pairing_key: &str,
) -> Result<Option<Option<FlowId>>, AdapterError> {
    let Some(key) = PairingKey::parse(pairing_key) else {
        return Ok(None);
    };
    match store
        .get(&keys::pairing_key(&key_hash(key.expose())))
        .await?
    {
        Some(record) => {
            let grant: PairingGrant =
                serde_json::from_slice(&record.value).map_err(AdapterError::internal)?;
            Ok(Some(grant.flow_id))
        }
        None => Ok(None),
    }
}
