//! A user's WebAuthn credentials as stored: with their passcode devices (they never
//! authenticate on the Device API either), each credential id claimed across the service
//! (so a passwordless sign-in finds its owner, and one authenticator is never set up
//! twice), and the last signature counter kept apart, moved forward by compare-and-set.

use crate::counter;
use crate::error::AdapterError;
use crate::ids::DeviceId;
use crate::keys;
use crate::otp_device::{self, Claim, OtpDevice};
use crate::store::Store;
use crate::user::UserId;
use crate::webauthn_registration::WebauthnKey;

/// Saves a credential just set up as a device of `user`; a credential id already known
/// (to anyone) is a `Conflict`.
pub(crate) async fn enrol(
    store: &dyn Store,
    user: &UserId,
    device: OtpDevice,
) -> Result<OtpDevice, AdapterError> {
    let key = device
        .webauthn
        .as_ref()
        .ok_or_else(|| AdapterError::internal("not a WebAuthn device"))?;
    let claim = keys::webauthn_credential(&key.credential_id);
    otp_device::add_claimed(
        store,
        user,
        device,
        &claim,
        "this authenticator is already set up",
    )
    .await
}

/// Who holds the credential `credential_id`, if anyone.
pub(crate) async fn owner(
    store: &dyn Store,
    credential_id: &[u8],
) -> Result<Option<Claim>, AdapterError> {
    otp_device::claimed(store, &keys::webauthn_credential(credential_id)).await
}

/// Frees a removed credential's id and drops its counter.
pub(crate) async fn forget(store: &dyn Store, device: &OtpDevice) -> Result<(), AdapterError> {
    if let Some(key) = &device.webauthn {
        store
            .delete(&keys::webauthn_credential(&key.credential_id))
            .await?;
        store.delete(&keys::webauthn_counter(&device.id)).await?;
    }
    Ok(())
}

/// Accepts the signature counter an assertion presents, or says it shows a clone
/// (WebAuthn §7.2 step 22): once an authenticator has counted, each assertion must count
/// higher than the last accepted one (or than at set-up); an authenticator that never
/// counts presents 0 every time. Of two concurrent assertions presenting the same value,
/// exactly one is accepted.
pub(crate) async fn counter_accepted(
    store: &dyn Store,
    device: &DeviceId,
    key: &WebauthnKey,
    presented: u32,
) -> Result<bool, AdapterError> {
    let stored = keys::webauthn_counter(device);
    let last = counter::last(store, &stored)
        .await?
        .unwrap_or(u64::from(key.sign_count));
    if presented == 0 {
        return Ok(last == 0);
    }
    if u64::from(presented) <= last {
        return Ok(false);
    }
    counter::advance(store, &stored, u64::from(presented)).await
}

/// Disables a credential whose counter showed a clone: it stays listed (the operator sees
/// why) but is never offered again until removed and set up anew.
pub(crate) async fn disable(
    store: &dyn Store,
    user: &UserId,
    device: &DeviceId,
    reason: &str,
) -> Result<(), AdapterError> {
    otp_device::modify(store, user, device, |stored| {
        if let Some(key) = stored.webauthn.as_mut() {
            key.disabled = Some(reason.to_owned());
        }
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MemoryStore;

    fn key(sign_count: u32) -> WebauthnKey {
        WebauthnKey {
            method: crate::policy::Method::SecurityKey,
            credential_id: vec![1, 2, 3],
            aaguid: None,
            sign_count,
            credential: serde_json::Value::Null,
            disabled: None,
        }
    }

    #[tokio::test]
    async fn a_counter_must_move_past_the_last_accepted_one() {
        let store = MemoryStore::new();
        let device = DeviceId::generate();
        let set_up_at_5 = key(5);
        assert!(
            !counter_accepted(&store, &device, &set_up_at_5, 5)
                .await
                .unwrap()
        );
        assert!(
            counter_accepted(&store, &device, &set_up_at_5, 6)
                .await
                .unwrap()
        );
        assert!(
            !counter_accepted(&store, &device, &set_up_at_5, 6)
                .await
                .unwrap()
        );
        assert!(
            !counter_accepted(&store, &device, &set_up_at_5, 0)
                .await
                .unwrap()
        );
        assert!(
            counter_accepted(&store, &device, &set_up_at_5, 9)
                .await
                .unwrap()
        );
        let (a, b) = tokio::join!(
            counter_accepted(&store, &device, &set_up_at_5, 10),
            counter_accepted(&store, &device, &set_up_at_5, 10)
        );
        assert!(a.unwrap() ^ b.unwrap(), "exactly one of two racers wins");
    }

    #[tokio::test]
    async fn an_authenticator_without_a_counter_presents_zero_every_time() {
        let store = MemoryStore::new();
        let device = DeviceId::generate();
        let uncounted = key(0);
        assert!(
            counter_accepted(&store, &device, &uncounted, 0)
                .await
                .unwrap()
        );
        assert!(
            counter_accepted(&store, &device, &uncounted, 0)
                .await
                .unwrap()
        );
        // Once it counted, a zero is a clone (or a reset authenticator).
        assert!(
            counter_accepted(&store, &device, &uncounted, 1)
                .await
                .unwrap()
        );
        assert!(
            !counter_accepted(&store, &device, &uncounted, 0)
                .await
                .unwrap()
        );
    }
}
