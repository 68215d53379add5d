//! The Admin API: what the operator reads about users and their devices.

use serde::{Deserialize, Serialize};

use crate::authn::Method;
use crate::device::PairedDevice;

/// `GET /admin/v1/users/{userId}/devices`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserDevices {
    /// The paired mobile devices, oldest first.
    pub devices: Vec<PairedDevice>,
    /// The passcode devices (SMS, voice, email, authenticator app), oldest first.
    pub passcode_devices: Vec<PasscodeDevice>,
}

/// A passcode device as the operator sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PasscodeDevice {
    /// Device id.
    pub id: String,
    /// `SMS`, `VOICE`, `EMAIL`, `TOTP`, `YUBIKEY`, `OATH_TOKEN`, `SECURITY_KEY` or
    /// `PLATFORM`.
    pub method: Method,
    /// Where codes go, masked; an imported token's public id or serial; a WebAuthn
    /// authenticator's model (AAGUID), when attested.
    pub target: Option<String>,
    /// When it was set up (seconds since the epoch).
    pub paired_at: u64,
    /// Why it may no longer be used (a WebAuthn credential whose signature counter showed
    /// a clone); absent while usable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disabled: Option<String>,
}

/// `GET /admin/v1/users/{userId}`: the profile as the operator sees it. The user code's
/// hash is never part of it: an offline guess needs only the hash, and the code is short.
/// Field names are those the profile was always answered with (snake case).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdminUser {
    /// Stable identifier.
    pub id: String,
    /// Login name.
    pub username: String,
    /// Given name.
    #[serde(default)]
    pub first_name: Option<String>,
    /// Family name.
    #[serde(default)]
    pub last_name: Option<String>,
    /// Email address.
    #[serde(default)]
    pub email: Option<String>,
    /// Mobile number for SMS, E.164.
    #[serde(default)]
    pub phone: Option<String>,
    /// Number for voice calls, E.164.
    #[serde(default)]
    pub voice: Option<String>,
    /// The language of the texts sent to them (BCP 47).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    /// Directory groups.
    #[serde(default)]
    pub groups: Vec<String>,
    /// Free attributes from the federation server.
    #[serde(default)]
    pub attributes: std::collections::BTreeMap<String, String>,
    /// Whether the user has a CIBA `user_code` (never the code or its hash).
    pub has_user_code: bool,
}

/// Who made a change to a flow.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditActor {
    /// The federation server, through the Adapter API (start, result pickup).
    FederationServer,
    /// The person's browser or app web view, through the Authentication API.
    Browser,
    /// A paired device, through the Device API.
    Device,
    /// A relying party, through the CIBA endpoints.
    RelyingParty,
    /// The operator, through the Admin API.
    Operator,
    /// assent itself (a push that could not be delivered), with no request behind it.
    Service,
}

/// One state change of a flow, as kept in its audit trail.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditEvent {
    /// When (ms since the epoch).
    pub at_ms: u64,
    /// The flow.
    pub flow_id: String,
    /// The flow's kind (`oob`, `ciba`, ...).
    pub kind: String,
    /// The flow's user (`~anonymous` while a QR sign-on does not know it yet).
    pub user_id: String,
    /// What happened: `start`, or the event the flow's machine applied
    /// (`authenticate`, `device decision`, `result pickup`, ...).
    pub event: String,
    /// The status before the change (none for `start`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_before: Option<String>,
    /// The status after it.
    pub status_after: String,
    /// Who made it.
    pub actor: AuditActor,
    /// The federation server's or relying party's client id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// The IP address the request came from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
    /// The request's `User-Agent`, shortened.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
    /// The device that acted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_id: Option<String>,
}

/// `GET /admin/v1/flows/{flowId}/events`: a page of a flow's events, newest first.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FlowEvents {
    /// The events.
    pub events: Vec<AuditEvent>,
    /// The `before` of the next (older) page; none on the last page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_before: Option<u64>,
}

/// One flow in a user's trail.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserFlowEvents {
    /// The flow.
    pub flow_id: String,
    /// When it started, or its user became known (ms since the epoch).
    pub at_ms: u64,
    /// Its events, newest first.
    pub events: Vec<AuditEvent>,
}

/// `GET /admin/v1/users/{userId}/events`: a page of a user's flows, newest first, each
/// with its events.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserEvents {
    /// The flows.
    pub flows: Vec<UserFlowEvents>,
    /// The `before` of the next (older) page; none on the last page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_before: Option<u64>,
}
