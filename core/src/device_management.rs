//! Managing a user's devices: list, rename, choose the primary, unpair. Unpairing cancels
//! the requests still waiting for that device, and unpairing the primary promotes the
//! oldest remaining device.

use serde::{Deserialize, Serialize};

use crate::device::{self, Device, validate_label};
use crate::error::{AdapterError, FlowError};
use crate::flow::Event;
use crate::ids::{AuthId, DeviceId};
use crate::user::UserId;
use crate::{Adapter, keys};

/// A device as its user and the operator see it.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeviceView {
    /// Device id.
    pub id: String,
    /// The name the app reported.
    pub name: String,
    /// The user's name for it.
    pub nickname: Option<String>,
    /// Operating system.
    pub os: String,
    /// Operating system version.
    pub os_version: String,
    /// Hardware model.
    pub model: String,
    /// When it was paired (seconds since the epoch).
    pub paired_at: u64,
    /// The user's primary device.
    pub primary: bool,
}

/// A passcode device (SMS, voice, email, authenticator app) as the operator sees it.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PasscodeDeviceView {
    /// Device id.
    pub id: String,
    /// `SMS`, `VOICE`, `EMAIL`, `TOTP`, `YUBIKEY`, `OATH_TOKEN`, `SECURITY_KEY` or
    /// `PLATFORM`.
    pub method: crate::policy::Method,
    /// Where codes go, masked; an imported token's public id or serial; a WebAuthn
    /// authenticator's model (AAGUID), when attested.
    pub target: Option<String>,
    /// When it was set up (seconds since the epoch).
    pub paired_at: u64,
    /// Why it may no longer be used (a WebAuthn credential that showed a clone).
    pub disabled: Option<String>,
}

/// A change to a device.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DeviceUpdate {
    /// A new nickname.
    #[serde(default)]
    pub nickname: Option<String>,
    /// `true` makes it the primary device.
    #[serde(default)]
    pub primary: Option<bool>,
}

impl PasscodeDeviceView {
    /// A passcode device as the operator sees it: never a secret.
    pub fn of(device: crate::otp_device::OtpDevice) -> Self {
        Self {
            id: device.id.to_string(),
            method: device.method,
            // An imported token shows what is printed on it (not secret).
            target: device
                .address
                .as_deref()
                .map(crate::notify::mask_recipient)
                .or_else(|| device.yubikey.map(|keys| keys.public_id))
                .or_else(|| device.oath.map(|token| token.serial))
                .or_else(|| {
                    let aaguid = device.webauthn.as_ref().and_then(|key| key.aaguid);
                    aaguid.map(|aaguid| aaguid.to_string())
                }),
            paired_at: device.paired_at,
            disabled: device.webauthn.and_then(|key| key.disabled),
        }
    }
}

impl Adapter {
    /// A user's devices, oldest first.
    pub async fn devices_of(&self, user: &UserId) -> Result<Vec<DeviceView>, AdapterError> {
        let user = self
            .find_user_with_devices(user, crate::user::Passcodes::Skip)
            .await?
            .ok_or(AdapterError::NotFound("user"))?;
        let primary = user.default_device.clone();
        let devices = device::listed(self.store(), &user).await?;
        Ok(devices
            .into_iter()
            .map(|device| DeviceView {
                primary: primary.as_ref() == Some(&device.id),
                id: device.id.to_string(),
                name: device.name,
                nickname: device.nickname,
                os: device.os,
                os_version: device.os_version,
                model: device.model,
                paired_at: device.paired_at,
            })
            .collect())
    }

    /// A user's passcode devices, oldest first.
    pub async fn passcode_devices_of(
        &self,
        user: &UserId,
    ) -> Result<Vec<PasscodeDeviceView>, AdapterError> {
        Ok(crate::otp_device::list(self.store(), user)
            .await?
            .into_iter()
            .map(PasscodeDeviceView::of)
            .collect())
    }

    async fn owned_device(&self, user: &UserId, id: &str) -> Result<(Device, u64), AdapterError> {
        let id = DeviceId::parse(id).ok_or(AdapterError::NotFound("device"))?;
        match device::find_versioned(self.store(), &id).await? {
            Some((device, version)) if device.serves(user) => Ok((device, version)),
            _ => Err(AdapterError::NotFound("device")),
        }
    }

    /// Renames a device and/or makes it primary.
    pub async fn update_device(
        &self,
        user: &UserId,
        id: &str,
        update: DeviceUpdate,
    ) -> Result<DeviceView, AdapterError> {
        let (mut device, version) = self.owned_device(user, id).await?;
        if update.primary == Some(false) {
            return Err(AdapterError::Invalid(
                "make another device primary instead".to_owned(),
            ));
        }
        if let Some(nickname) = update.nickname {
            let nickname = nickname.trim().to_owned();
            validate_label("nickname", &nickname)?;
            device.nickname = Some(nickname);
            device::update(self.store(), &device, version).await?;
        }
        if update.primary == Some(true) {
            device::set_default(self.store(), user, &device.id).await?;
        }
        self.devices_of(user)
            .await?
            .into_iter()
            .find(|view| view.id == device.id.as_str())
            .ok_or(AdapterError::NotFound("device"))
    }

    /// Unpairs a device from a user; the user's requests waiting for it fail at once
    /// (`MFA_FAILED`). A shared device stays paired with its other users.
    pub async fn unpair(&self, user: &UserId, id: &str) -> Result<(), AdapterError> {
        let (device, version) = match self.owned_device(user, id).await {
            Err(AdapterError::NotFound(_)) => {
                // A passcode device: removing it is all there is to do.
                let id = DeviceId::parse(id).ok_or(AdapterError::NotFound("device"))?;
                return match crate::otp_device::remove(self.store(), user, &id).await? {
                    true => device::promote_primary(self.store(), user, &id).await,
                    false => Err(AdapterError::NotFound("device")),
                };
            }
            other => other?,
        };
        let store = self.store();
        let shared = device.users().count() > 1;
        if shared {
            let mut remaining = device.clone();
            if remaining.user_id == *user {
                remaining.user_id = remaining.also_paired.remove(0);
            } else {
                remaining.also_paired.retain(|other| other != user);
            }
            device::update(store, &remaining, version).await?;
            store
                .index_remove(&keys::user_devices(user), device.id.as_str())
                .await?;
        } else {
            device::remove(store, &device).await?;
        }
        let pending = keys::device_pending(&device.id);
        for member in store.index_members(&pending).await? {
            let Some(auth_id) = AuthId::parse(&member) else {
                continue;
            };
            let unpaired = Event::DeviceUnpaired {
                device: device.id.clone(),
            };
            match self
                .update_flow(&auth_id.flow(), None, |flow| {
                    if flow.user_id != *user {
                        // Another user's request on a shared device stays.
                        return Err(FlowError::NotPending.into());
                    }
                    Ok(unpaired.clone())
                })
                .await
            {
                Ok(_)
                | Err(AdapterError::NotFound(_))
                | Err(AdapterError::Flow(FlowError::NotPending)) => {}
                Err(error) => return Err(error),
            }
        }
        if !shared {
            store.delete(&pending).await?;
        }
        device::promote_primary(store, user, &device.id).await
    }
}
