//! Every store key and channel name, built here and nowhere else.
//!
//! Keys of one user share the hash tag `{u:<userId>}`, keys of one flow share `{<flowId>}`
//! and keys of one device `{d:<deviceId>}`, so that a Redis Cluster keeps what one script
//! touches on one slot.

use crate::ids::{DeviceId, FlowId};
use crate::user::UserId;

/// A user's profile.
pub fn user(user: &UserId) -> String {
    format!("user:{{u:{user}}}")
}

/// The user id behind a login hint (`kind` is username, email or phone; the value is
/// normalised and hashed, so any text is safe in a key).
pub fn login(kind: &str, value: &str) -> String {
    use sha2::Digest;
    let digest = hex::encode(sha2::Sha256::digest(value.as_bytes()));
    format!("login:{{{kind}:{digest}}}")
}

/// The set of a user's device ids.
pub fn user_devices(user: &UserId) -> String {
    format!("devices:{{u:{user}}}")
}

/// The id of the device a user chose as default.
pub fn default_device(user: &UserId) -> String {
    format!("default-device:{{u:{user}}}")
}

/// A paired device.
pub fn device(device: &DeviceId) -> String {
    format!("device:{{d:{device}}}")
}

/// The auth ids waiting for a device's answer.
pub fn device_pending(device: &DeviceId) -> String {
    format!("pending:{{d:{device}}}")
}

/// A device JWT id already used (replay marker); the id is hashed so any text is safe.
pub fn device_jti(device: &DeviceId, jti_sha256: &str) -> String {
    format!("jti:{{d:{device}}}:{jti_sha256}")
}

/// A `mobilePayload` id already used by an app not trusted yet, by the SHA-256 of its key
/// and of the id (replay marker).
pub fn new_app_jti(key_sha256: &str, jti_sha256: &str) -> String {
    format!("app-jti:{{k:{key_sha256}}}:{jti_sha256}")
}

/// A pairing key, by the SHA-256 of its value (the key itself is never stored).
pub fn pairing_key(key_sha256: &str) -> String {
    format!("pairing:{{{key_sha256}}}")
}

/// A flow.
pub fn flow(flow: &FlowId) -> String {
    format!("flow:{{{flow}}}")
}

/// Wake-ups for waiters on a flow.
pub fn flow_channel(flow: &FlowId) -> String {
    format!("flow:{flow}")
}

/// Wake-ups for a device's long poll.
pub fn device_channel(device: &DeviceId) -> String {
    format!("device:{device}")
}

/// CIBA user codes checked for a user recently (the limit's sliding window).
pub fn user_code_tries(user: &UserId) -> String {
    format!("user-code-tries:{{u:{user}}}")
}

/// The token signing keys shared by every instance.
pub fn signing_keys() -> String {
    "signing-keys:{sk}".to_owned()
}

/// A client assertion or request object `jti` already used (replay marker), by client.
pub fn client_jti(client_id: &str, jti: &str) -> String {
    use sha2::Digest;
    let digest = hex::encode(sha2::Sha256::digest(
        format!("{client_id}\u{0}{jti}").as_bytes(),
    ));
    format!("client-jti:{{{digest}}}")
}

/// A refresh token, by the SHA-256 of its value.
pub fn refresh_token(token_sha256: &str) -> String {
    format!("refresh:{{{token_sha256}}}")
}

/// A revoked family of refresh tokens (a spent one was used again).
pub fn revoked_refresh_family(family: &str) -> String {
    format!("refresh-revoked:{{{family}}}")
}

/// The flow a QR short code's handle names.
pub fn qr_handle(handle: &str) -> String {
    format!("qr-handle:{{h:{handle}}}")
}

/// QR short codes typed for a flow (the limit's window).
pub fn qr_code_tries(flow: &FlowId) -> String {
    format!("qr-code-tries:{{{flow}}}")
}

/// QR short codes typed on a device recently (the limit's window).
pub fn qr_device_code_tries(device: &DeviceId) -> String {
    format!("qr-code-tries:{{d:{device}}}")
}

/// A user's passcode devices (SMS, voice, email, authenticator apps).
pub fn otp_devices(user: &UserId) -> String {
    format!("otp-devices:{{u:{user}}}")
}

/// Push notifications sent to a user recently (the push limit's window).
pub fn user_pushes(user: &UserId) -> String {
    format!("pushes:{{u:{user}}}")
}

/// Passcodes sent to a user recently (the send limit's window).
pub fn user_sends(user: &UserId) -> String {
    format!("sends:{{u:{user}}}")
}

/// Passcodes a user tried recently (the attempt limit's window).
pub fn user_otp_attempts(user: &UserId) -> String {
    format!("otp-attempts:{{u:{user}}}")
}

/// The last TOTP time step a device's code was accepted for.
pub fn totp_last_step(device: &DeviceId) -> String {
    format!("totp-last:{{d:{device}}}")
}

/// Passcodes sent to an address recently, by the SHA-256 of the address.
pub fn address_sends(address: &str) -> String {
    use sha2::Digest;
    let digest = hex::encode(sha2::Sha256::digest(address.as_bytes()));
    format!("sends-to:{{{digest}}}")
}

/// A recent completed MFA of a user from one IP (and client device), by their hash.
pub fn recent_mfa(user: &UserId, origin_sha256: &str) -> String {
    format!("recent-mfa:{{u:{user}}}:{origin_sha256}")
}

/// A flow's audit events, oldest first (beside the flow, so its commit appends to them).
pub fn flow_events(flow: &FlowId) -> String {
    format!("events:{{{flow}}}")
}

/// A user's flows by time, for the user's audit trail.
pub fn user_flows(user: &UserId) -> String {
    format!("flows:{{u:{user}}}")
}

/// The YubiKey a public id belongs to (one key per public id in the whole service).
pub fn yubikey_public_id(public_id: &str) -> String {
    format!("yubikey-id:{{y:{public_id}}}")
}

/// The last session and use counters a YubiKey's OTP was accepted with.
pub fn yubikey_counter(device: &DeviceId) -> String {
    format!("yubikey-counter:{{d:{device}}}")
}

/// The OATH token a serial belongs to (hashed, so any text is safe in a key).
pub fn oath_serial(serial: &str) -> String {
    use sha2::Digest;
    let digest = hex::encode(sha2::Sha256::digest(serial.as_bytes()));
    format!("oath-serial:{{o:{digest}}}")
}

/// The last HOTP counter or TOTP step an OATH token's code was accepted for.
pub fn oath_counter(device: &DeviceId) -> String {
    format!("oath-counter:{{d:{device}}}")
}

/// The user and device a WebAuthn credential belongs to (one owner per credential id in
/// the whole service; hashed, as an authenticator chooses the id).
pub fn webauthn_credential(credential_id: &[u8]) -> String {
    use sha2::Digest;
    let digest = hex::encode(sha2::Sha256::digest(credential_id));
    format!("webauthn-credential:{{w:{digest}}}")
}

/// A passwordless sign-in's one-time context, by the SHA-256 (hex) of its value.
pub fn passwordless_context(digest: &str) -> String {
    format!("passwordless-context:{{p:{digest}}}")
}

/// The last signature counter a WebAuthn credential's assertion was accepted with.
pub fn webauthn_counter(device: &DeviceId) -> String {
    format!("webauthn-counter:{{d:{device}}}")
}
