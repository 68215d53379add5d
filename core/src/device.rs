//! Paired devices: who they belong to, their key, and the user's list of them.

use serde::{Deserialize, Serialize};

use crate::device_key::PublicDeviceKey;
use crate::error::AdapterError;
use crate::ids::DeviceId;
use crate::keys;
use crate::store::{Store, Ttl};
use crate::user::UserId;

/// Longest nickname, name, OS, version or model.
pub const MAX_LABEL_LEN: usize = 64;

/// A device paired with a user.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Device {
    /// Its id (the `iss` of its JWTs).
    pub id: DeviceId,
    /// The user it is paired with.
    pub user_id: UserId,
    /// The name the app reported (e.g. "Alice's phone").
    pub name: String,
    /// Operating system, e.g. `iOS` or `Android`.
    pub os: String,
    /// Operating system version.
    pub os_version: String,
    /// Hardware model.
    pub model: String,
    /// The user's own name for it.
    pub nickname: Option<String>,
    /// Its public key.
    pub public_key: PublicDeviceKey,
    /// When it was paired (seconds since the epoch).
    pub paired_at: u64,
    /// The same in milliseconds: orders devices paired within one second ("the oldest
    /// remaining" becomes primary). 0 for devices paired before it was recorded.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub paired_at_ms: u64,
    /// Further users of a shared device (a family tablet, a branch's phone).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub also_paired: Vec<UserId>,
    /// Trusted for one flow only (seed 001 one-time device authentication): never listed
    /// among the user's devices, gone when the flow is.
    #[serde(default)]
    pub one_time: bool,
    /// The flow a one-time device belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub one_time_flow: Option<crate::ids::FlowId>,
    /// The TOTP seed shared with the app at pairing (base32): its own passcodes, for
    /// `useCode` and for when it cannot be reached.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub otp_seed: Option<String>,
}

impl Device {
    /// Whether the device is paired with `user`.
    pub fn serves(&self, user: &UserId) -> bool {
        self.user_id == *user || self.also_paired.contains(user)
    }

    /// Every user the device is paired with, the first pairing first.
    pub fn users(&self) -> impl Iterator<Item = &UserId> {
        std::iter::once(&self.user_id).chain(self.also_paired.iter())
    }

    /// The device type PingFederate's widget knows: `iPhone`, `Android`, or `Mobile`.
    pub fn widget_type(&self) -> &'static str {
        let os = self.os.to_ascii_lowercase();
        if os.contains("ios") || os.contains("iphone") {
            "iPhone"
        } else if os.contains("android") {
            "Android"
        } else {
            "Mobile"
        }
    }
}

fn is_zero(value: &u64) -> bool {
    *value == 0
}

/// Checks a free-text label (name, nickname, OS...).
pub fn validate_label(field: &str, value: &str) -> Result<(), AdapterError> {
    if value.trim().is_empty()
        || value.len() > MAX_LABEL_LEN
        || value.chars().any(crate::params::is_deceptive)
    {
        return Err(AdapterError::Invalid(format!(
            "`{field}` must be 1 to {MAX_LABEL_LEN} bytes of printable text"
        )));
    }
    Ok(())
}

/// Reads a device.
pub async fn find(store: &dyn Store, id: &DeviceId) -> Result<Option<Device>, AdapterError> {
    Ok(find_versioned(store, id).await?.map(|(device, _)| device))
}

/// Reads a device and the version an update must name.
pub async fn find_versioned(
    store: &dyn Store,
    id: &DeviceId,
) -> Result<Option<(Device, u64)>, AdapterError> {
    match store.get(&keys::device(id)).await? {
        Some(record) => Ok(Some((
            serde_json::from_slice(&record.value).map_err(AdapterError::internal)?,
            record.version,
        ))),
        None => Ok(None),
    }
}

/// Changes a device only if it is still the version read: an unpairing that raced the
/// change wins, and the device is not brought back.
pub async fn update(store: &dyn Store, device: &Device, version: u64) -> Result<(), AdapterError> {
    let value = serde_json::to_vec(device).map_err(AdapterError::internal)?;
    match store
        .transition(&keys::device(&device.id), version, &value, Ttl::Keep, None)
        .await
    {
        Ok(_) => Ok(()),
        Err(crate::store::StoreError::NotFound) => Err(AdapterError::NotFound("device")),
        Err(error) => Err(error.into()),
    }
}

/// Writes a device (long-lived: no TTL) and lists it under its user.
pub async fn save(store: &dyn Store, device: &Device) -> Result<(), AdapterError> {
    let value = serde_json::to_vec(device).map_err(AdapterError::internal)?;
    store
        .put(&keys::device(&device.id), &value, Ttl::Persist)
        .await?;
    store
        .index_add(
            &keys::user_devices(&device.user_id),
            device.id.as_str(),
            Ttl::Persist,
            None,
        )
        .await?;
    Ok(())
}

/// Writes a device trusted for one flow: not listed under its user, and expiring with the
/// flow.
pub async fn save_one_time(
    store: &dyn Store,
    device: &Device,
    ttl: std::time::Duration,
) -> Result<(), AdapterError> {
    let value = serde_json::to_vec(device).map_err(AdapterError::internal)?;
    if !store
        .insert(&keys::device(&device.id), &value, Ttl::Set(ttl))
        .await?
    {
        return Err(AdapterError::internal("device id collision"));
    }
    Ok(())
}

/// A user's devices, oldest first.
pub async fn list_for_user(store: &dyn Store, user: &UserId) -> Result<Vec<Device>, AdapterError> {
    let ids: Vec<DeviceId> = store
        .index_members(&keys::user_devices(user))
        .await?
        .iter()
        .filter_map(|id| DeviceId::parse(id))
        .collect();
    load_listed(store, user, &ids).await
}

/// The mobile devices of a user read with [`crate::user::find_with_devices`], oldest
/// first. Each device lives on its own slot: one read per device, sent together.
pub async fn listed(
    store: &dyn Store,
    user: &crate::user::UserWithDevices,
) -> Result<Vec<Device>, AdapterError> {
    load_listed(store, &user.profile.id, &user.device_ids).await
}

/// The devices `ids` names that still exist and serve `user`, oldest first.
async fn load_listed(
    store: &dyn Store,
    user: &UserId,
    ids: &[DeviceId],
) -> Result<Vec<Device>, AdapterError> {
    let found = futures_util::future::try_join_all(ids.iter().map(|id| find(store, id))).await?;
    let mut devices: Vec<Device> = found
        .into_iter()
        .flatten()
        .filter(|device| device.serves(user))
        .collect();
    devices.sort_by(|a, b| {
        (a.paired_at, a.paired_at_ms, a.id.as_str()).cmp(&(
            b.paired_at,
            b.paired_at_ms,
            b.id.as_str(),
        ))
    });
    Ok(devices)
}

/// The device a user chose as default, if any.
pub async fn default_for_user(
    store: &dyn Store,
    user: &UserId,
) -> Result<Option<DeviceId>, AdapterError> {
    Ok(store
        .get(&keys::default_device(user))
        .await?
        .and_then(default_from))
}

/// The device id a user's default-device record holds (`None` when it holds none).
pub(crate) fn default_from(record: crate::store::Record) -> Option<DeviceId> {
    String::from_utf8(record.value)
        .ok()
        .and_then(|id| DeviceId::parse(&id))
}

/// Makes `device` the user's default.
pub async fn set_default(
    store: &dyn Store,
    user: &UserId,
    device: &DeviceId,
) -> Result<(), AdapterError> {
    store
        .put(
            &keys::default_device(user),
            device.as_str().as_bytes(),
            Ttl::Persist,
        )
        .await?;
    Ok(())
}

/// Makes `device` the user's primary if they have none yet, so that a user's first
/// device (mobile or passcode) becomes their primary; one atomic set-if-absent, so two
/// first pairings at once leave one primary.
pub async fn claim_primary(
    store: &dyn Store,
    user: &UserId,
    device: &DeviceId,
) -> Result<(), AdapterError> {
    store
        .insert(
            &keys::default_device(user),
            device.as_str().as_bytes(),
            Ttl::Persist,
        )
        .await?;
    Ok(())
}

/// After `removed` was unpaired from `user`: if it was their primary, the oldest
/// remaining mobile device becomes primary, else the oldest passcode device, else none.
/// Compare-and-set, so a primary chosen meanwhile stays.
pub async fn promote_primary(
    store: &dyn Store,
    user: &UserId,
    removed: &DeviceId,
) -> Result<(), AdapterError> {
    let key = keys::default_device(user);
    let Some(record) = store.get(&key).await? else {
        return Ok(());
    };
    if record.value != removed.as_str().as_bytes() {
        return Ok(());
    }
    let next = match list_for_user(store, user).await?.into_iter().next() {
        Some(mobile) => Some(mobile.id),
        None => crate::otp_device::list(store, user)
            .await?
            .into_iter()
            .min_by_key(|device| device.paired_at)
            .map(|device| device.id),
    };
    let Some(next) = next else {
        store.delete(&key).await?;
        return Ok(());
    };
    match store
        .transition(
            &key,
            record.version,
            next.as_str().as_bytes(),
            Ttl::Keep,
            None,
        )
        .await
    {
        Ok(_) | Err(crate::store::StoreError::Conflict | crate::store::StoreError::NotFound) => {
            Ok(())
        }
        Err(error) => Err(error.into()),
    }
}

/// Unpairs a device: it can no longer authenticate or answer. The record goes first, so
/// that a failure half-way leaves a device that cannot authenticate, never one that can
/// but is hidden from its user's list.
pub async fn remove(store: &dyn Store, device: &Device) -> Result<(), AdapterError> {
    store.delete(&keys::device(&device.id)).await?;
    store
        .index_remove(&keys::user_devices(&device.user_id), device.id.as_str())
        .await?;
    Ok(())
}
