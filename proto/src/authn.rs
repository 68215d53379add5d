//! The Authentication API as PingFederate renders it: a flow's state
//! `{id, pluginTypeId, status, _links, ...fields of that status}`, the actions a client
//! posts with their bodies, and the error body. Field names are the ones PingFederate's
//! widget (pingidentity/pf-authn-js-widget) reads; times are RFC 3339 strings.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::ser::SerializeMap;
use serde::{Deserialize, Serialize, Serializer};

/// The plugin type reported in every state.
pub const PLUGIN_TYPE_ID: &str = "assent";

/// A flow's state: what `GET` and every action answer. The JSON lists `_links` just before
/// `status` and that status's fields (JSON objects are unordered; this order only keeps
/// a state recognisable at a glance).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthnState {
    /// The flow id.
    pub id: String,
    /// Always [`PLUGIN_TYPE_ID`].
    pub plugin_type_id: String,
    /// The administrator's message, shown while the flow is not over.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admin_message: Option<String>,
    /// The binding secret a cookieless client echoes in `X-PF-Authn-API-State`.
    #[serde(
        rename = "_pf_authn_api_state",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub authn_api_state: Option<String>,
    /// Exactly the actions allowed now, each with where to post it.
    #[serde(rename = "_links")]
    pub links: BTreeMap<ActionId, Link>,
    /// The status, with the fields that status shows.
    #[serde(flatten)]
    pub status: Status,
}

impl AuthnState {
    /// Whether `action` is offered now.
    pub fn offers(&self, action: ActionId) -> bool {
        self.links.contains_key(&action)
    }
}

/// Where an action is posted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Link {
    /// The flow's URL.
    pub href: String,
}

/// A status and its fields; the JSON carries the status name in `status`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Status {
    /// Nothing was sent yet: a browser posts `authenticate {}` (PingFederate's widget does
    /// so by itself), a native app `authenticate {mobilePayload}`.
    AuthenticationRequired,
    /// The person picks a device.
    DeviceSelectionRequired(DeviceSelection),
    /// A request is on the device.
    PushConfirmationWaiting(PushConfirmation),
    /// The device denied: final.
    PushConfirmationRejected(PushRejection),
    /// The device did not answer in time.
    PushConfirmationTimedOut(PushConfirmation),
    /// A one-time passcode is expected.
    OtpRequired(OtpChallenge),
    /// Policy requires methods the user lacks.
    MfaSetupRequired(MfaSetup),
    /// The person picks which method to pair.
    DevicePairingMethodRequired(PairingMethods),
    /// The person gives the phone number to pair for text messages.
    SmsPairingTargetRequired,
    /// The person gives the phone number to pair for voice calls.
    VoicePairingTargetRequired,
    /// The person gives the email address to pair.
    EmailPairingTargetRequired,
    /// A code sent by text message proves the new number.
    SmsActivationRequired(PhoneActivation),
    /// A code read out by a call proves the new number.
    VoiceActivationRequired(PhoneActivation),
    /// A code sent by email proves the new address.
    EmailActivationRequired(EmailActivation),
    /// A code from the authenticator app proves its new secret.
    TotpActivationRequired(TotpActivation),
    /// A new FIDO2 security key is to be created (WebAuthn).
    SecurityKeyActivationRequired(WebauthnActivation),
    /// A new platform authenticator credential is to be created (WebAuthn).
    PlatformActivationRequired(WebauthnActivation),
    /// A WebAuthn authenticator is to sign the challenge.
    AssertionRequired(AssertionChallenge),
    /// A one-time pairing key waits for the app (registration).
    MobileActivationRequired(MobileActivation),
    /// The app in the web view must sign `serverPayload` with its device key.
    MobilePairingRequired(MobilePairing),
    /// A QR code waits to be scanned (QR sign-on).
    AuthenticationCodeResponseRequired(AuthenticationCode),
    /// The second factor was given; the browser continues.
    MfaCompleted,
    /// The second factor cannot be given.
    MfaFailed(Failure),
    /// Done.
    Completed(Completion),
    /// Done; control returns to `resumeUrl`.
    Resume(Resume),
    /// Ended without success.
    Failed(Failure),
    /// The person gave up.
    Canceled(Cancellation),
}

/// A status's name alone, for comparing without its fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum StatusName {
    /// `AUTHENTICATION_REQUIRED`
    AuthenticationRequired,
    /// `DEVICE_SELECTION_REQUIRED`
    DeviceSelectionRequired,
    /// `PUSH_CONFIRMATION_WAITING`
    PushConfirmationWaiting,
    /// `PUSH_CONFIRMATION_REJECTED`
    PushConfirmationRejected,
    /// `PUSH_CONFIRMATION_TIMED_OUT`
    PushConfirmationTimedOut,
    /// `OTP_REQUIRED`
    OtpRequired,
    /// `MFA_SETUP_REQUIRED`
    MfaSetupRequired,
    /// `DEVICE_PAIRING_METHOD_REQUIRED`
    DevicePairingMethodRequired,
    /// `SMS_PAIRING_TARGET_REQUIRED`
    SmsPairingTargetRequired,
    /// `VOICE_PAIRING_TARGET_REQUIRED`
    VoicePairingTargetRequired,
    /// `EMAIL_PAIRING_TARGET_REQUIRED`
    EmailPairingTargetRequired,
    /// `SMS_ACTIVATION_REQUIRED`
    SmsActivationRequired,
    /// `VOICE_ACTIVATION_REQUIRED`
    VoiceActivationRequired,
    /// `EMAIL_ACTIVATION_REQUIRED`
    EmailActivationRequired,
    /// `TOTP_ACTIVATION_REQUIRED`
    TotpActivationRequired,
    /// `SECURITY_KEY_ACTIVATION_REQUIRED`
    SecurityKeyActivationRequired,
    /// `PLATFORM_ACTIVATION_REQUIRED`
    PlatformActivationRequired,
    /// `ASSERTION_REQUIRED`
    AssertionRequired,
    /// `MOBILE_ACTIVATION_REQUIRED`
    MobileActivationRequired,
    /// `MOBILE_PAIRING_REQUIRED`
    MobilePairingRequired,
    /// `AUTHENTICATION_CODE_RESPONSE_REQUIRED`
    AuthenticationCodeResponseRequired,
    /// `MFA_COMPLETED`
    MfaCompleted,
    /// `MFA_FAILED`
    MfaFailed,
    /// `COMPLETED`
    Completed,
    /// `RESUME`
    Resume,
    /// `FAILED`
    Failed,
    /// `CANCELED`
    Canceled,
}

impl Status {
    /// The status's name.
    pub fn name(&self) -> StatusName {
        match self {
            Self::AuthenticationRequired => StatusName::AuthenticationRequired,
            Self::DeviceSelectionRequired(_) => StatusName::DeviceSelectionRequired,
            Self::PushConfirmationWaiting(_) => StatusName::PushConfirmationWaiting,
            Self::PushConfirmationRejected(_) => StatusName::PushConfirmationRejected,
            Self::PushConfirmationTimedOut(_) => StatusName::PushConfirmationTimedOut,
            Self::OtpRequired(_) => StatusName::OtpRequired,
            Self::MfaSetupRequired(_) => StatusName::MfaSetupRequired,
            Self::DevicePairingMethodRequired(_) => StatusName::DevicePairingMethodRequired,
            Self::SmsPairingTargetRequired => StatusName::SmsPairingTargetRequired,
            Self::VoicePairingTargetRequired => StatusName::VoicePairingTargetRequired,
            Self::EmailPairingTargetRequired => StatusName::EmailPairingTargetRequired,
            Self::SmsActivationRequired(_) => StatusName::SmsActivationRequired,
            Self::VoiceActivationRequired(_) => StatusName::VoiceActivationRequired,
            Self::EmailActivationRequired(_) => StatusName::EmailActivationRequired,
            Self::TotpActivationRequired(_) => StatusName::TotpActivationRequired,
            Self::SecurityKeyActivationRequired(_) => StatusName::SecurityKeyActivationRequired,
            Self::PlatformActivationRequired(_) => StatusName::PlatformActivationRequired,
            Self::AssertionRequired(_) => StatusName::AssertionRequired,
            Self::MobileActivationRequired(_) => StatusName::MobileActivationRequired,
            Self::MobilePairingRequired(_) => StatusName::MobilePairingRequired,
            Self::AuthenticationCodeResponseRequired(_) => {
                StatusName::AuthenticationCodeResponseRequired
            }
            Self::MfaCompleted => StatusName::MfaCompleted,
            Self::MfaFailed(_) => StatusName::MfaFailed,
            Self::Completed(_) => StatusName::Completed,
            Self::Resume(_) => StatusName::Resume,
            Self::Failed(_) => StatusName::Failed,
            Self::Canceled(_) => StatusName::Canceled,
        }
    }

    /// The devices listed, for the statuses that list them.
    pub fn devices(&self) -> &[Device] {
        match self {
            Self::DeviceSelectionRequired(fields) => &fields.devices,
            Self::PushConfirmationWaiting(fields) | Self::PushConfirmationTimedOut(fields) => {
                &fields.devices
            }
            Self::PushConfirmationRejected(fields) => &fields.devices,
            Self::OtpRequired(fields) => &fields.devices,
            _ => &[],
        }
    }

    /// The id of the selected device, for the statuses that show one.
    pub fn selected_device_id(&self) -> Option<&str> {
        let selected = match self {
            Self::DeviceSelectionRequired(fields) => &fields.selected_device_ref,
            Self::PushConfirmationWaiting(fields) | Self::PushConfirmationTimedOut(fields) => {
                &fields.selected_device_ref
            }
            Self::PushConfirmationRejected(fields) => &fields.selected_device_ref,
            Self::OtpRequired(fields) => &fields.selected_device_ref,
            _ => return None,
        };
        selected.as_ref().map(|selected| selected.id.as_str())
    }

    /// The selected device, for the statuses that show it.
    pub fn device(&self) -> Option<&Device> {
        match self {
            Self::PushConfirmationWaiting(fields) | Self::PushConfirmationTimedOut(fields) => {
                fields.device.as_ref()
            }
            Self::PushConfirmationRejected(fields) => fields.device.as_ref(),
            Self::OtpRequired(fields) => fields.device.as_ref(),
            _ => None,
        }
    }
}

/// A device as the widget lists it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Device {
    /// Device id (what `deviceRef.id` names).
    pub id: String,
    /// What kind of device, as the widget picks its icon by.
    #[serde(rename = "type")]
    pub device_type: DeviceType,
    /// The name the app reported, or the passcode method's name.
    pub name: String,
    /// The user's name for it.
    pub nickname: Option<String>,
    /// What identifies it to the person: the model, or the masked phone number or address.
    pub target: String,
    /// The user's default device.
    pub default: bool,
    /// The same, under the name the widget's device list reads.
    pub default_device: bool,
    /// Whether policy lets the person pick it.
    pub usable: bool,
    /// Why not, when it is not usable.
    pub unusable_reason: Option<String>,
    /// Whether a passcode from it may be typed now (the widget offers "Use passcode").
    pub otp_enabled: bool,
    /// Whether it receives push notifications.
    pub push_enabled: bool,
    /// A backup method from the user's profile, not an enrolled device.
    pub backup: bool,
}

/// The device types the widget knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum DeviceType {
    /// A mobile app on iOS.
    #[serde(rename = "iPhone")]
    IPhone,
    /// A mobile app on Android.
    Android,
    /// A mobile app on another system.
    Mobile,
    /// Passcodes by text message.
    #[serde(rename = "SMS")]
    Sms,
    /// Passcodes by voice call.
    Voice,
    /// Passcodes by email.
    Email,
    /// An authenticator app.
    #[serde(rename = "TOTP")]
    Totp,
    /// A FIDO2 security key.
    #[serde(rename = "SECURITY_KEY")]
    SecurityKey,
    /// A platform authenticator (built-in biometrics).
    #[serde(rename = "PLATFORM")]
    Platform,
    /// A YubiKey (OTP).
    #[serde(rename = "YUBIKEY")]
    Yubikey,
    /// An OATH hardware token.
    #[serde(rename = "OATH_TOKEN")]
    OathToken,
}

/// A reference to a device: `{"id": ...}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceRef {
    /// Device id.
    pub id: String,
}

/// `DEVICE_SELECTION_REQUIRED`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeviceSelection {
    /// The devices to pick from.
    pub devices: Vec<Device>,
    /// The device already chosen, if any.
    pub selected_device_ref: Option<DeviceRef>,
    /// Always true here.
    pub change_device_permitted: bool,
    /// Whether the person may rename, remove and choose a default device here.
    pub manage_devices_allowed: bool,
    /// Whether the user has a default device.
    pub user_selected_default: bool,
}

/// `PUSH_CONFIRMATION_WAITING` and `PUSH_CONFIRMATION_TIMED_OUT`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PushConfirmation {
    /// The user's devices.
    pub devices: Vec<Device>,
    /// The device asked.
    pub selected_device_ref: Option<DeviceRef>,
    /// The same device, in full.
    pub device: Option<Device>,
    /// Whether another device may be picked.
    pub change_device_permitted: bool,
    /// The application signed in to.
    pub application_name: String,
    /// Digits of the app's own passcode.
    pub otp_length: u32,
    /// Number matching: the number the person picks on the device.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub number_match: Option<u8>,
}

/// `PUSH_CONFIRMATION_REJECTED`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PushRejection {
    /// The user's devices.
    pub devices: Vec<Device>,
    /// The device that denied.
    pub selected_device_ref: Option<DeviceRef>,
    /// The same device, in full.
    pub device: Option<Device>,
}

/// `OTP_REQUIRED`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OtpChallenge {
    /// The user's devices.
    pub devices: Vec<Device>,
    /// The device the code comes from.
    pub selected_device_ref: Option<DeviceRef>,
    /// The same device, in full.
    pub device: Option<Device>,
    /// Whether another device may be picked.
    pub change_device_permitted: bool,
    /// The application signed in to.
    pub application_name: String,
    /// Digits the code has.
    pub otp_length: u32,
}

/// `MFA_SETUP_REQUIRED`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MfaSetup {
    /// Whether the person may skip setting up (never: policy made the methods mandatory).
    pub allow_skip_mfa: bool,
    /// The methods still to set up.
    pub required_methods: Vec<Method>,
}

/// An authentication method, by its policy name (seed 001).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Method {
    /// The mobile app: push, and its own one-time passcodes.
    PingidMobile,
    /// One-time passcodes by text message.
    Sms,
    /// One-time passcodes read out by a voice call.
    Voice,
    /// One-time passcodes by email.
    Email,
    /// An authenticator app (RFC 6238).
    Totp,
    /// A FIDO2 security key (WebAuthn).
    SecurityKey,
    /// A platform authenticator (WebAuthn).
    Platform,
    /// A YubiKey's OTP.
    Yubikey,
    /// An OATH hardware token.
    OathToken,
}

/// `DEVICE_PAIRING_METHOD_REQUIRED`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PairingMethods {
    /// What may be paired.
    pub device_pairing_methods: Vec<PairingMethod>,
}

/// One method that may be paired.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PairingMethod {
    /// What to pair.
    pub device_type: PairingType,
    /// The app to install, for the mobile app.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub application_name: Option<String>,
}

/// The pairing methods' device types, spelled as the widget matches them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum PairingType {
    /// The mobile app.
    #[serde(rename = "MOBILE")]
    Mobile,
    /// Text message.
    #[serde(rename = "SMS")]
    Sms,
    /// Voice call.
    Voice,
    /// Email.
    Email,
    /// Authenticator app.
    #[serde(rename = "TOTP")]
    Totp,
    /// FIDO2 security key.
    #[serde(rename = "SECURITY_KEY")]
    SecurityKey,
    /// Platform authenticator.
    #[serde(rename = "PLATFORM")]
    Platform,
}

impl PairingType {
    /// The name as the wire spells it (what `selectDevicePairingMethod` sends back).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Mobile => "MOBILE",
            Self::Sms => "SMS",
            Self::Voice => "Voice",
            Self::Email => "Email",
            Self::Totp => "TOTP",
            Self::SecurityKey => "SECURITY_KEY",
            Self::Platform => "PLATFORM",
        }
    }
}

/// `SMS_ACTIVATION_REQUIRED` and `VOICE_ACTIVATION_REQUIRED`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PhoneActivation {
    /// The number the code went to, masked.
    pub phone: Option<String>,
    /// Digits the code has.
    pub otp_length: u32,
}

/// `EMAIL_ACTIVATION_REQUIRED`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EmailActivation {
    /// The address the code went to, masked.
    pub email: Option<String>,
    /// Digits the code has.
    pub otp_length: u32,
}

/// `TOTP_ACTIVATION_REQUIRED`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TotpActivation {
    /// The `otpauth://` URI the widget draws as a QR code.
    pub key_uri: String,
    /// The secret, base32, for typing into the app by hand.
    pub pairing_key: String,
    /// The key URI as QR images.
    pub qr_code: Option<QrImages>,
    /// Digits the code has.
    pub otp_length: u32,
}

/// `SECURITY_KEY_ACTIVATION_REQUIRED` and `PLATFORM_ACTIVATION_REQUIRED`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WebauthnActivation {
    /// The `PublicKeyCredentialCreationOptions` as a JSON string, binary fields (the
    /// challenge, the user id, excluded credential ids) as arrays of byte numbers: what
    /// PingFederate's widget parses and hands to `navigator.credentials.create`.
    pub public_key_credential_creation_options: String,
}

/// `ASSERTION_REQUIRED`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AssertionChallenge {
    /// The user's devices.
    pub devices: Vec<Device>,
    /// The authenticator asked (none in a passwordless sign-in: any passkey answers).
    pub selected_device_ref: Option<DeviceRef>,
    /// Whether another device may be picked.
    pub change_device_permitted: bool,
    /// The application signed in to.
    pub application_name: String,
    /// What `navigator.credentials.get` is called with.
    pub public_key_credential_request_options: PublicKeyCredentialRequestOptions,
}

/// WebAuthn's `PublicKeyCredentialRequestOptions`, binary fields as arrays of byte
/// numbers (the widget builds its `Uint8Array`s from them).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PublicKeyCredentialRequestOptions {
    /// The one-time challenge.
    pub challenge: Vec<u8>,
    /// How long the browser waits (ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<u32>,
    /// The relying party id.
    pub rp_id: String,
    /// The credentials that may answer; empty for a discoverable credential.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allow_credentials: Vec<AllowedCredential>,
    /// `required`, `preferred` or `discouraged`.
    pub user_verification: String,
}

/// A credential allowed to answer an assertion.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AllowedCredential {
    /// Always `public-key`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The credential id.
    pub id: Vec<u8>,
    /// How the browser may reach it (`usb`, `nfc`, `ble`, `internal`, `hybrid`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transports: Option<Vec<String>>,
}

/// `MOBILE_ACTIVATION_REQUIRED`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MobileActivation {
    /// The one-time pairing key for the app.
    pub pairing_key: String,
    /// The app to pair with.
    pub application_name: String,
    /// The pairing key as QR images.
    pub qr_code: Option<QrImages>,
    /// When the key stops working.
    pub expires_at: DateTime<Utc>,
}

/// `MOBILE_PAIRING_REQUIRED`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MobilePairing {
    /// Base64url of a JSON [`crate::mobile::ServerPayload`], for the app's SDK to sign.
    pub server_payload: String,
}

/// `AUTHENTICATION_CODE_RESPONSE_REQUIRED`: the QR code, until a device scans it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthenticationCode {
    /// What the QR code encodes (`<scheme>://assent?authentication_token=...`), until scanned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uri: Option<String>,
    /// The URI as QR images, until scanned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub qr_code: Option<QrImages>,
    /// When the code stops working, until scanned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<DateTime<Utc>>,
    /// The short code a person types into the app when the camera cannot scan (the widget
    /// prints it under "Authentication Code"), until scanned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// The application signed in to.
    pub application_name: String,
    /// Whether a device has scanned the code (the person now picks a user on it).
    pub claimed: bool,
}

/// A short value as QR images, as data URIs a page can put straight into `<img src>`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct QrImages {
    /// `data:image/svg+xml;base64,...`
    pub svg: String,
    /// `data:image/png;base64,...`
    pub png: String,
}

/// `MFA_FAILED` and `FAILED`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Failure {
    /// Why.
    pub reason: String,
    /// The same, which the widget shows.
    pub user_message: String,
}

/// `COMPLETED`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Completion {
    /// `APPROVED` when a second factor was given; absent when policy let the person through.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<Outcome>,
    /// What the widget hands its redirectless caller: the device that approved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorize_response: Option<AuthorizeResponse>,
}

/// How a flow ended, as its final state says.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Outcome {
    /// A second factor was given.
    Approved,
    /// The person gave up.
    Canceled,
}

/// The approval, for a redirectless widget's `onAuthorizationSuccess`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthorizeResponse {
    /// The device that approved.
    pub device_id: String,
}

/// `RESUME`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Resume {
    /// Where the browser goes back to (the flow's `returnUrl`).
    pub resume_url: String,
}

/// `CANCELED`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cancellation {
    /// Always [`Outcome::Canceled`].
    pub outcome: Outcome,
}

/// An action id: what `_links` lists and what a client names in
/// `Content-Type: application/vnd.pingidentity.<actionId>+json` or `?action=`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ActionId {
    /// `selectDevice {deviceRef:{id}}`: push to that device (also: retry after a time-out).
    SelectDevice,
    /// `setDefaultDevice {deviceRef:{id}}`
    SetDefaultDevice,
    /// `updateDeviceNickname {id, nickname}`
    UpdateDeviceNickname,
    /// `removeDevice {deviceRef:{id}}`
    RemoveDevice,
    /// `poll`: wait for the device's answer.
    Poll,
    /// `continueAuthentication`
    ContinueAuthentication,
    /// `cancelAuthentication`
    CancelAuthentication,
    /// `cancelDevicePairing`: what the widget sends to abandon a registration.
    CancelDevicePairing,
    /// `authenticate {mobilePayload}`: a trusted app's signed answer.
    Authenticate,
    /// `checkOtp {otp}`
    CheckOtp,
    /// `resend`: send the passcode again.
    Resend,
    /// `resendOtp`: what the widget's activation pages send to resend.
    ResendOtp,
    /// `setupMfa`
    SetupMfa,
    /// `selectDevicePairingMethod {devicePairingMethod:{deviceType}}`
    SelectDevicePairingMethod,
    /// `submitSmsTarget {phone}`
    SubmitSmsTarget,
    /// `submitVoiceTarget {phone}`
    SubmitVoiceTarget,
    /// `submitEmailTarget {email}`
    SubmitEmailTarget,
    /// `activateSmsDevice {otp}`
    ActivateSmsDevice,
    /// `activateVoiceDevice {otp}`
    ActivateVoiceDevice,
    /// `activateEmailDevice {otp}`
    ActivateEmailDevice,
    /// `activateTotpDevice {otp}`
    ActivateTotpDevice,
    /// `activateSecurityKeyDevice {attestation, origin}`
    ActivateSecurityKeyDevice,
    /// `activatePlatformDevice {attestation, origin}`
    ActivatePlatformDevice,
    /// `checkAssertion {assertion, origin, compatibility}`
    CheckAssertion,
}

impl ActionId {
    /// Every action id.
    pub const ALL: [Self; 24] = [
        Self::SelectDevice,
        Self::SetDefaultDevice,
        Self::UpdateDeviceNickname,
        Self::RemoveDevice,
        Self::Poll,
        Self::ContinueAuthentication,
        Self::CancelAuthentication,
        Self::CancelDevicePairing,
        Self::Authenticate,
        Self::CheckOtp,
        Self::Resend,
        Self::ResendOtp,
        Self::SetupMfa,
        Self::SelectDevicePairingMethod,
        Self::SubmitSmsTarget,
        Self::SubmitVoiceTarget,
        Self::SubmitEmailTarget,
        Self::ActivateSmsDevice,
        Self::ActivateVoiceDevice,
        Self::ActivateEmailDevice,
        Self::ActivateTotpDevice,
        Self::ActivateSecurityKeyDevice,
        Self::ActivatePlatformDevice,
        Self::CheckAssertion,
    ];

    /// The id as the wire spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SelectDevice => "selectDevice",
            Self::SetDefaultDevice => "setDefaultDevice",
            Self::UpdateDeviceNickname => "updateDeviceNickname",
            Self::RemoveDevice => "removeDevice",
            Self::Poll => "poll",
            Self::ContinueAuthentication => "continueAuthentication",
            Self::CancelAuthentication => "cancelAuthentication",
            Self::CancelDevicePairing => "cancelDevicePairing",
            Self::Authenticate => "authenticate",
            Self::CheckOtp => "checkOtp",
            Self::Resend => "resend",
            Self::ResendOtp => "resendOtp",
            Self::SetupMfa => "setupMfa",
            Self::SelectDevicePairingMethod => "selectDevicePairingMethod",
            Self::SubmitSmsTarget => "submitSmsTarget",
            Self::SubmitVoiceTarget => "submitVoiceTarget",
            Self::SubmitEmailTarget => "submitEmailTarget",
            Self::ActivateSmsDevice => "activateSmsDevice",
            Self::ActivateVoiceDevice => "activateVoiceDevice",
            Self::ActivateEmailDevice => "activateEmailDevice",
            Self::ActivateTotpDevice => "activateTotpDevice",
            Self::ActivateSecurityKeyDevice => "activateSecurityKeyDevice",
            Self::ActivatePlatformDevice => "activatePlatformDevice",
            Self::CheckAssertion => "checkAssertion",
        }
    }

    /// Parses an action id (exact case, as PingFederate does).
    pub fn parse(id: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|action| action.as_str() == id)
    }
}

/// An action with its parameters, as a client posts it. It serializes to its body: the
/// parameters, or `{}` for an action without any.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ActionRequest {
    /// `selectDevice`
    SelectDevice(DeviceChoice),
    /// `setDefaultDevice`
    SetDefaultDevice(DeviceChoice),
    /// `updateDeviceNickname`
    UpdateDeviceNickname(NicknameUpdate),
    /// `removeDevice`
    RemoveDevice(DeviceChoice),
    /// `poll`
    Poll,
    /// `continueAuthentication`
    ContinueAuthentication,
    /// `cancelAuthentication`
    CancelAuthentication,
    /// `cancelDevicePairing`
    CancelDevicePairing,
    /// `authenticate`
    Authenticate(MobilePayload),
    /// `checkOtp`
    CheckOtp(Passcode),
    /// `resend`
    Resend,
    /// `resendOtp`
    ResendOtp,
    /// `setupMfa`
    SetupMfa,
    /// `selectDevicePairingMethod`
    SelectDevicePairingMethod(PairingMethodChoice),
    /// `submitSmsTarget`
    SubmitSmsTarget(PhoneTarget),
    /// `submitVoiceTarget`
    SubmitVoiceTarget(PhoneTarget),
    /// `submitEmailTarget`
    SubmitEmailTarget(EmailTarget),
    /// `activateSmsDevice`
    ActivateSmsDevice(Passcode),
    /// `activateVoiceDevice`
    ActivateVoiceDevice(Passcode),
    /// `activateEmailDevice`
    ActivateEmailDevice(Passcode),
    /// `activateTotpDevice`
    ActivateTotpDevice(Passcode),
    /// `activateSecurityKeyDevice`
    ActivateSecurityKeyDevice(Attestation),
    /// `activatePlatformDevice`
    ActivatePlatformDevice(Attestation),
    /// `checkAssertion`
    CheckAssertion(Assertion),
}

impl ActionRequest {
    /// Its action id.
    pub fn id(&self) -> ActionId {
        match self {
            Self::SelectDevice(_) => ActionId::SelectDevice,
            Self::SetDefaultDevice(_) => ActionId::SetDefaultDevice,
            Self::UpdateDeviceNickname(_) => ActionId::UpdateDeviceNickname,
            Self::RemoveDevice(_) => ActionId::RemoveDevice,
            Self::Poll => ActionId::Poll,
            Self::ContinueAuthentication => ActionId::ContinueAuthentication,
            Self::CancelAuthentication => ActionId::CancelAuthentication,
            Self::CancelDevicePairing => ActionId::CancelDevicePairing,
            Self::Authenticate(_) => ActionId::Authenticate,
            Self::CheckOtp(_) => ActionId::CheckOtp,
            Self::Resend => ActionId::Resend,
            Self::ResendOtp => ActionId::ResendOtp,
            Self::SetupMfa => ActionId::SetupMfa,
            Self::SelectDevicePairingMethod(_) => ActionId::SelectDevicePairingMethod,
            Self::SubmitSmsTarget(_) => ActionId::SubmitSmsTarget,
            Self::SubmitVoiceTarget(_) => ActionId::SubmitVoiceTarget,
            Self::SubmitEmailTarget(_) => ActionId::SubmitEmailTarget,
            Self::ActivateSmsDevice(_) => ActionId::ActivateSmsDevice,
            Self::ActivateVoiceDevice(_) => ActionId::ActivateVoiceDevice,
            Self::ActivateEmailDevice(_) => ActionId::ActivateEmailDevice,
            Self::ActivateTotpDevice(_) => ActionId::ActivateTotpDevice,
            Self::ActivateSecurityKeyDevice(_) => ActionId::ActivateSecurityKeyDevice,
            Self::ActivatePlatformDevice(_) => ActionId::ActivatePlatformDevice,
            Self::CheckAssertion(_) => ActionId::CheckAssertion,
        }
    }

    /// Whether it carries parameters; the widget sends no body for one that does not.
    pub fn has_parameters(&self) -> bool {
        !matches!(
            self,
            Self::Poll
                | Self::ContinueAuthentication
                | Self::CancelAuthentication
                | Self::CancelDevicePairing
                | Self::Resend
                | Self::ResendOtp
                | Self::SetupMfa
        )
    }

    /// `selectDevice {deviceRef:{id}}`.
    pub fn select_device(id: impl Into<String>) -> Self {
        Self::SelectDevice(DeviceChoice::new(id))
    }

    /// `setDefaultDevice {deviceRef:{id}}`.
    pub fn set_default_device(id: impl Into<String>) -> Self {
        Self::SetDefaultDevice(DeviceChoice::new(id))
    }

    /// `removeDevice {deviceRef:{id}}`.
    pub fn remove_device(id: impl Into<String>) -> Self {
        Self::RemoveDevice(DeviceChoice::new(id))
    }

    /// `updateDeviceNickname {id, nickname}`.
    pub fn update_device_nickname(id: impl Into<String>, nickname: impl Into<String>) -> Self {
        Self::UpdateDeviceNickname(NicknameUpdate {
            id: id.into(),
            nickname: nickname.into(),
        })
    }

    /// `authenticate {mobilePayload}`: a native app.
    pub fn authenticate(mobile_payload: impl Into<String>) -> Self {
        Self::Authenticate(MobilePayload {
            mobile_payload: Some(mobile_payload.into()),
        })
    }

    /// `authenticate {}`: a browser on the page, as PingFederate's widget posts it.
    pub fn authenticate_browser() -> Self {
        Self::Authenticate(MobilePayload {
            mobile_payload: None,
        })
    }

    /// `checkOtp {otp}`.
    pub fn check_otp(otp: impl Into<String>) -> Self {
        Self::CheckOtp(Passcode { otp: otp.into() })
    }

    /// `submitSmsTarget {phone}`.
    pub fn submit_sms_target(phone: impl Into<String>) -> Self {
        Self::SubmitSmsTarget(PhoneTarget {
            phone: phone.into(),
        })
    }

    /// `submitVoiceTarget {phone}`.
    pub fn submit_voice_target(phone: impl Into<String>) -> Self {
        Self::SubmitVoiceTarget(PhoneTarget {
            phone: phone.into(),
        })
    }

    /// `submitEmailTarget {email}`.
    pub fn submit_email_target(email: impl Into<String>) -> Self {
        Self::SubmitEmailTarget(EmailTarget {
            email: email.into(),
        })
    }

    /// `activateSmsDevice {otp}`.
    pub fn activate_sms_device(otp: impl Into<String>) -> Self {
        Self::ActivateSmsDevice(Passcode { otp: otp.into() })
    }

    /// `activateVoiceDevice {otp}`.
    pub fn activate_voice_device(otp: impl Into<String>) -> Self {
        Self::ActivateVoiceDevice(Passcode { otp: otp.into() })
    }

    /// `activateEmailDevice {otp}`.
    pub fn activate_email_device(otp: impl Into<String>) -> Self {
        Self::ActivateEmailDevice(Passcode { otp: otp.into() })
    }

    /// `activateTotpDevice {otp}`.
    pub fn activate_totp_device(otp: impl Into<String>) -> Self {
        Self::ActivateTotpDevice(Passcode { otp: otp.into() })
    }

    /// `selectDevicePairingMethod {devicePairingMethod:{deviceType}}`.
    pub fn select_pairing_method(device_type: impl Into<String>) -> Self {
        Self::SelectDevicePairingMethod(PairingMethodChoice {
            device_pairing_method: PairingMethodRef {
                device_type: device_type.into(),
                application_name: None,
            },
        })
    }
}

impl Serialize for ActionRequest {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::SelectDevice(body) | Self::SetDefaultDevice(body) | Self::RemoveDevice(body) => {
                body.serialize(serializer)
            }
            Self::UpdateDeviceNickname(body) => body.serialize(serializer),
            Self::Authenticate(body) => body.serialize(serializer),
            Self::CheckOtp(body)
            | Self::ActivateSmsDevice(body)
            | Self::ActivateVoiceDevice(body)
            | Self::ActivateEmailDevice(body)
            | Self::ActivateTotpDevice(body) => body.serialize(serializer),
            Self::SelectDevicePairingMethod(body) => body.serialize(serializer),
            Self::SubmitSmsTarget(body) | Self::SubmitVoiceTarget(body) => {
                body.serialize(serializer)
            }
            Self::SubmitEmailTarget(body) => body.serialize(serializer),
            Self::ActivateSecurityKeyDevice(body) | Self::ActivatePlatformDevice(body) => {
                body.serialize(serializer)
            }
            Self::CheckAssertion(body) => body.serialize(serializer),
            Self::Poll
            | Self::ContinueAuthentication
            | Self::CancelAuthentication
            | Self::CancelDevicePairing
            | Self::Resend
            | Self::ResendOtp
            | Self::SetupMfa => serializer.serialize_map(Some(0))?.end(),
        }
    }
}

/// `{attestation, origin}`: the body of `activateSecurityKeyDevice` and
/// `activatePlatformDevice`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attestation {
    /// The new credential as a JSON string (`id`, `rawId`, `type`, `response` with
    /// `clientDataJSON` and `attestationObject`), binary fields in base64.
    pub attestation: String,
    /// The page's origin (`window.location.origin`).
    pub origin: String,
}

/// `{assertion, origin, compatibility}`: the body of `checkAssertion`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Assertion {
    /// The signed answer as a JSON string (`id`, `rawId`, `type`, `response` with
    /// `clientDataJSON`, `authenticatorData`, `signature`, `userHandle`), binary fields in
    /// base64.
    pub assertion: String,
    /// The page's origin (`window.location.origin`).
    pub origin: String,
    /// What the browser supports: `FULL` (a platform authenticator), `SECURITY_KEY_ONLY`
    /// or `NONE`.
    pub compatibility: Compatibility,
}

/// What WebAuthn support the browser reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Compatibility {
    /// A user-verifying platform authenticator is available.
    Full,
    /// Only roaming security keys.
    SecurityKeyOnly,
    /// No WebAuthn.
    None,
}

/// `{deviceRef:{id}}`: the body of `selectDevice`, `setDefaultDevice` and `removeDevice`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeviceChoice {
    /// The device.
    pub device_ref: DeviceRef,
}

impl DeviceChoice {
    /// A choice of the device `id`.
    pub fn new(id: impl Into<String>) -> Self {
        Self {
            device_ref: DeviceRef { id: id.into() },
        }
    }
}

/// `{id, nickname}`: the body of `updateDeviceNickname`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NicknameUpdate {
    /// The device.
    pub id: String,
    /// Its new nickname.
    pub nickname: String,
}

/// The body of `authenticate`: `{}` from a browser, `{mobilePayload}` from a native app.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MobilePayload {
    /// The app's compact JWS (from its SDK); absent for a browser.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mobile_payload: Option<String>,
}

/// `{otp}`: the body of `checkOtp` and of the `activate...Device` actions.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Passcode {
    /// The one-time passcode as typed.
    pub otp: String,
}

/// `{devicePairingMethod:{deviceType}}`: the body of `selectDevicePairingMethod`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PairingMethodChoice {
    /// The method picked.
    pub device_pairing_method: PairingMethodRef,
}

/// The method picked. The widget also sends the FIDO fields it knows; they are ignored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PairingMethodRef {
    /// A [`PairingType`] as the state spelled it, or a policy method name (`PINGID_MOBILE`,
    /// `SMS`...); kept as text because the server accepts either, in any case.
    pub device_type: String,
    /// The app named by the state, which the widget echoes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub application_name: Option<String>,
}

/// `{phone}`: the body of `submitSmsTarget` and `submitVoiceTarget`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PhoneTarget {
    /// The phone number (E.164).
    pub phone: String,
}

/// `{email}`: the body of `submitEmailTarget`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmailTarget {
    /// The email address.
    pub email: String,
}

/// The error body (the Ping error model). It never carries `status`: the widget reads any
/// body with one as a flow state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// What kind of failure.
    pub code: ErrorCode,
    /// What went wrong, for developers.
    pub message: String,
    /// One detail per problem.
    pub details: Vec<ErrorDetail>,
}

/// One problem of an [`ErrorBody`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorDetail {
    /// What exactly.
    pub code: DetailCode,
    /// What went wrong, for developers.
    pub message: String,
    /// What the widget shows the person.
    pub user_message: String,
    /// The field at fault (`deviceRef.id`, `otp`...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// Wrong passcodes still allowed, on `INVALID_OTP`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempts_remaining: Option<u32>,
}

/// The top-level error codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ErrorCode {
    /// A parameter is missing or wrong (also a wrong passcode).
    ValidationError,
    /// No action id, an unknown one, or one the flow does not offer now.
    InvalidActionId,
    /// The request itself is unacceptable (headers, body, binding).
    InvalidRequest,
    /// No such flow (or it expired).
    ResourceNotFound,
    /// The request was understood but could not be carried out now.
    RequestFailed,
    /// A fault of the server.
    UnexpectedError,
}

/// The detail codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum DetailCode {
    /// A POST without `X-XSRF-Header`.
    MissingXsrfHeader,
    /// See [`ErrorCode::InvalidActionId`].
    InvalidActionId,
    /// Neither `application/vnd.pingidentity.<actionId>+json` nor `application/json`.
    InvalidContentType,
    /// The body is not a JSON object.
    InvalidJson,
    /// The body is larger than allowed.
    RequestTooLarge,
    /// A required parameter is absent.
    MissingValue,
    /// A parameter has the wrong type or value.
    InvalidValue,
    /// No such flow.
    ResourceNotFound,
    /// The flow is bound to another browser or client.
    FlowBoundToAnotherClient,
    /// A wrong or already used passcode.
    InvalidOtp,
    /// Policy does not let this device be used.
    DeviceNotAllowed,
    /// Too many attempts or requests; wait.
    TooManyRequests,
    /// Too many push notifications for this user.
    PushLimitExceeded,
    /// Not one of the user's devices.
    InvalidDevice,
    /// The flow changed meanwhile, or cannot move this way.
    Conflict,
    /// Credentials are missing or wrong.
    Unauthenticated,
    /// The store is unreachable; retry.
    ServiceUnavailable,
    /// A fault of the server.
    UnexpectedError,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(status: Status) -> AuthnState {
        AuthnState {
            id: "F1".to_owned(),
            plugin_type_id: PLUGIN_TYPE_ID.to_owned(),
            links: BTreeMap::from([(
                ActionId::CancelAuthentication,
                Link {
                    href: "https://assent.example/pf-ws/authn/flows/F1".to_owned(),
                },
            )]),
            admin_message: Some("Be careful".to_owned()),
            authn_api_state: None,
            status,
        }
    }

    fn phone() -> Device {
        Device {
            id: "D1".to_owned(),
            device_type: DeviceType::IPhone,
            name: "Alice's phone".to_owned(),
            nickname: None,
            target: "iPhone 15".to_owned(),
            default: true,
            default_device: true,
            usable: true,
            unusable_reason: None,
            otp_enabled: false,
            push_enabled: true,
            backup: false,
        }
    }

    fn round_trip(state: &AuthnState) -> serde_json::Value {
        let json = serde_json::to_value(state).unwrap();
        let back: AuthnState = serde_json::from_value(json.clone()).unwrap();
        assert_eq!(&back, state);
        json
    }

    #[test]
    fn states_round_trip_with_the_status_tag_beside_the_common_fields() {
        let waiting = state(Status::PushConfirmationWaiting(PushConfirmation {
            devices: vec![phone()],
            selected_device_ref: Some(DeviceRef {
                id: "D1".to_owned(),
            }),
            device: Some(phone()),
            change_device_permitted: false,
            application_name: "Demo Bank".to_owned(),
            otp_length: 6,
            number_match: Some(42),
        }));
        let json = round_trip(&waiting);
        assert_eq!(json["status"], "PUSH_CONFIRMATION_WAITING");
        assert_eq!(json["pluginTypeId"], "assent");
        assert_eq!(json["adminMessage"], "Be careful");
        assert!(json["_links"]["cancelAuthentication"]["href"].is_string());
        assert_eq!(json["selectedDeviceRef"]["id"], "D1");
        assert_eq!(json["devices"][0]["type"], "iPhone");
        assert_eq!(json["devices"][0]["defaultDevice"], true);
        assert!(json["devices"][0]["nickname"].is_null());
        assert_eq!(json["numberMatch"], 42);
        assert!(json.get("_pf_authn_api_state").is_none());
        let text = serde_json::to_string(&waiting).unwrap();
        assert!(
            text.contains(r#"}},"status":"PUSH_CONFIRMATION_WAITING","devices":["#),
            "the status and its fields follow `_links`: {text}"
        );

        let selection = state(Status::DeviceSelectionRequired(DeviceSelection {
            devices: vec![phone()],
            selected_device_ref: None,
            change_device_permitted: true,
            manage_devices_allowed: false,
            user_selected_default: true,
        }));
        let json = round_trip(&selection);
        assert!(json["selectedDeviceRef"].is_null(), "null, not absent");

        for status in [
            Status::MfaCompleted,
            Status::SmsPairingTargetRequired,
            Status::Canceled(Cancellation {
                outcome: Outcome::Canceled,
            }),
            Status::Completed(Completion {
                outcome: Some(Outcome::Approved),
                authorize_response: Some(AuthorizeResponse {
                    device_id: "D1".to_owned(),
                }),
            }),
            Status::Completed(Completion {
                outcome: None,
                authorize_response: None,
            }),
            Status::MfaFailed(Failure {
                reason: "no paired device".to_owned(),
                user_message: "no paired device".to_owned(),
            }),
            Status::DevicePairingMethodRequired(PairingMethods {
                device_pairing_methods: vec![
                    PairingMethod {
                        device_type: PairingType::Mobile,
                        application_name: Some("Demo Bank".to_owned()),
                    },
                    PairingMethod {
                        device_type: PairingType::Voice,
                        application_name: None,
                    },
                ],
            }),
            Status::MfaSetupRequired(MfaSetup {
                allow_skip_mfa: false,
                required_methods: vec![Method::PingidMobile, Method::Totp],
            }),
        ] {
            let name = status.name();
            let json = round_trip(&state(status));
            assert_eq!(json["status"], serde_json::to_value(name).unwrap());
        }
        let completed = round_trip(&state(Status::Completed(Completion {
            outcome: Some(Outcome::Approved),
            authorize_response: Some(AuthorizeResponse {
                device_id: "D1".to_owned(),
            }),
        })));
        assert_eq!(completed["outcome"], "APPROVED");
        assert_eq!(completed["authorizeResponse"]["deviceId"], "D1");
    }

    #[test]
    fn expiry_is_an_rfc_3339_string() {
        let expires_at = DateTime::from_timestamp_millis(1_767_225_600_000).unwrap();
        let activation = state(Status::MobileActivationRequired(MobileActivation {
            pairing_key: "ABCD1234EFGH5678".to_owned(),
            application_name: "Demo Bank".to_owned(),
            qr_code: None,
            expires_at,
        }));
        let json = round_trip(&activation);
        let written = json["expiresAt"].as_str().expect("a string, not a number");
        assert_eq!(
            DateTime::parse_from_rfc3339(written).unwrap(),
            expires_at,
            "{written}"
        );
        assert_eq!(written, "2026-01-01T00:00:00Z");
    }

    #[test]
    fn action_ids_parse_what_they_serialize() {
        for id in ActionId::ALL {
            assert_eq!(ActionId::parse(id.as_str()), Some(id));
            assert_eq!(serde_json::to_value(id).unwrap(), id.as_str());
        }
        assert_eq!(ActionId::parse("SelectDevice"), None, "case matters");
    }

    fn body(json: &str) -> serde_json::Value {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn actions_serialize_to_their_bodies() {
        let select = ActionRequest::select_device("D1");
        assert_eq!(select.id(), ActionId::SelectDevice);
        assert_eq!(
            serde_json::to_value(&select).unwrap(),
            body(r#"{ "deviceRef": { "id": "D1" } }"#)
        );
        assert_eq!(
            serde_json::to_value(ActionRequest::check_otp("123456")).unwrap(),
            body(r#"{ "otp": "123456" }"#)
        );
        assert!(!ActionRequest::CancelAuthentication.has_parameters());
        assert_eq!(
            serde_json::to_string(&ActionRequest::ContinueAuthentication).unwrap(),
            "{}"
        );
        assert_eq!(
            serde_json::to_value(ActionRequest::select_pairing_method("SMS")).unwrap(),
            body(r#"{ "devicePairingMethod": { "deviceType": "SMS" } }"#)
        );
    }

    #[test]
    fn types_are_spelled_as_the_widget_matches_them() {
        for (kind, spelled) in [
            (PairingType::Mobile, "MOBILE"),
            (PairingType::Sms, "SMS"),
            (PairingType::Voice, "Voice"),
            (PairingType::Email, "Email"),
            (PairingType::Totp, "TOTP"),
        ] {
            assert_eq!(serde_json::to_value(kind).unwrap(), spelled);
            assert_eq!(kind.as_str(), spelled);
        }
        for (kind, spelled) in [
            (DeviceType::IPhone, "iPhone"),
            (DeviceType::Android, "Android"),
            (DeviceType::Mobile, "Mobile"),
            (DeviceType::Sms, "SMS"),
            (DeviceType::Voice, "Voice"),
            (DeviceType::Email, "Email"),
            (DeviceType::Totp, "TOTP"),
        ] {
            assert_eq!(serde_json::to_value(kind).unwrap(), spelled);
        }
        for (method, spelled) in [
            (Method::PingidMobile, "PINGID_MOBILE"),
            (Method::Totp, "TOTP"),
        ] {
            assert_eq!(serde_json::to_value(method).unwrap(), spelled);
        }
    }
}
