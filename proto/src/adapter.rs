//! The Adapter API: what a federation server sends and receives.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// What the federation server asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FlowKind {
    /// Out of band / step up authentication from web.
    Oob,
    /// Transaction approval: the device shows and signs the dynamic parameters.
    Transaction,
    /// A CIBA request (refused here: CIBA starts at the backchannel endpoint).
    Ciba,
    /// Automatic device registration: the authenticated user pairs a new device.
    Registration,
    /// Device authorization: a trusted app proves itself with its device key.
    DeviceAuthorization,
    /// QR code sign-on: no user known until a trusted device scans the code.
    Qr,
    /// A new, untrusted device of a known user wants to pair.
    NewDevice,
    /// Passwordless sign-in: no user known until a passkey names its owner.
    Passwordless,
}

/// The application the user is signing in to, as the federation server describes it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Application {
    /// Display name.
    pub name: String,
    /// The federation server's id for it.
    pub id: Option<String>,
    /// Icon shown on the device.
    pub icon_url: Option<String>,
}

/// `POST /adapter/v1/flows`.
#[derive(Debug, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StartFlowRequest {
    /// `oob` or `transaction`.
    pub kind: FlowKind,
    /// Who.
    #[serde(default)]
    pub user: Option<UserInput>,
    /// The application signed in to.
    pub application: Application,
    /// The browser's IP address.
    #[serde(default)]
    pub client_ip: Option<String>,
    /// An opaque id of the browser (a device cookie), for the skip-MFA window.
    #[serde(default)]
    pub client_device: Option<String>,
    /// Flat map of strings (amount, payee...).
    #[serde(default)]
    pub dynamic_params: BTreeMap<String, String>,
    /// The message template for the device.
    #[serde(default)]
    pub template_id: Option<String>,
    /// Where the browser returns when done.
    #[serde(default)]
    pub return_url: Option<String>,
    /// A device to authenticate with for this flow only, without pairing it.
    #[serde(default)]
    pub one_time_device: Option<OneTimeDeviceInput>,
}

/// A device trusted for one flow: its public key and what it reports.
#[derive(Debug, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OneTimeDeviceInput {
    /// EC P-256 public JWK.
    pub public_jwk: serde_json::Map<String, serde_json::Value>,
    /// A name for it.
    pub name: String,
    /// Operating system.
    pub os: String,
    /// Operating system version.
    pub os_version: String,
    /// Hardware model.
    pub model: String,
}

/// The user, as the federation server knows them. Merged into what assent has stored:
/// a field left out keeps its stored value; `null` or `""` clears it; a value replaces
/// it. `groups` and `attributes`, when given, replace the stored ones.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UserInput {
    /// Stable id.
    pub id: String,
    /// Login name.
    pub username: String,
    /// Given name.
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub first_name: Option<Option<String>>,
    /// Family name.
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub last_name: Option<Option<String>>,
    /// Email.
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub email: Option<Option<String>>,
    /// Mobile number (E.164).
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub phone: Option<Option<String>>,
    /// Voice number (E.164): the PingID connector's "Landline Number", also accepted as
    /// `landline` (giving both is refused).
    #[serde(
        default,
        alias = "landline",
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub voice_number: Option<Option<String>>,
    /// The language of the texts assent sends them (SMS, voice, email, a push's default
    /// title and body): a BCP 47 tag such as `de` or `pt-BR`.
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub language: Option<Option<String>>,
    /// Directory groups (the first with a group policy decides the policy).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub groups: Option<Vec<String>>,
    /// Free attributes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attributes: Option<BTreeMap<String, String>>,
}

/// A field that is present: `null` becomes `Some(None)`, so that it differs from an
/// absent field (`None`, by `default`).
fn present<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

/// `201` answer to a flow start.
#[derive(Debug, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FlowCreated {
    /// The flow id.
    pub flow_id: String,
    /// Where the browser drives it.
    pub authn_api_url: String,
    /// Its status now.
    pub status: String,
    /// When it expires (seconds since the epoch).
    pub expires_at: u64,
    /// The id a one-time device authenticates with (the `iss` of its JWTs).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub one_time_device_id: Option<String>,
}

/// `POST /adapter/v1/passwordless/finalize`: seed 001's "Finalize Passwordless
/// Authentication", with the context a passwordless flow's result carried.
#[derive(Debug, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FinalizePasswordlessRequest {
    /// The username the federation server resolved for the subject the flow named.
    pub sub: String,
    /// The result's `passwordlessContext` (one-time).
    pub passwordless_context: String,
    /// The application signed in to (its policy applies).
    pub application: Application,
    /// The accessing device's IP address (network rules).
    #[serde(default)]
    pub client_ip: Option<String>,
    /// The user's groups (group policy); the stored ones when absent.
    #[serde(default)]
    pub groups: Option<Vec<String>>,
}

/// The answer to a finalize: whether policy lets the passwordless sign-in complete.
#[derive(Debug, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PasswordlessFinalized {
    /// `COMPLETED` or `FAILED`.
    pub status: String,
    /// The subject.
    pub sub: String,
    /// `PLATFORM` or `SECURITY_KEY`.
    pub authentication_type: String,
    /// The device the person signed in from, when its address is known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accessing_device: Option<AccessingDevice>,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// The device the person signed in from (the PingID connector's `accessingDevice`).
#[derive(Debug, Deserialize, Serialize)]
pub struct AccessingDevice {
    /// Its IP address.
    pub ip: String,
}
