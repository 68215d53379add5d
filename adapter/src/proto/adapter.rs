//! The Adapter API: what a federation server sends and receives.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::flow::{Application, FlowKind, StartFlow};
use crate::user::{UserId, UserProfile};

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

/// The user, as the federation server knows them.
#[derive(Debug, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UserInput {
    /// Stable id.
    pub id: UserId,
    /// Login name.
    pub username: String,
    /// Given name.
    #[serde(default)]
    pub first_name: Option<String>,
    /// Family name.
    #[serde(default)]
    pub last_name: Option<String>,
    /// Email.
    #[serde(default)]
    pub email: Option<String>,
    /// Mobile number (E.164).
    #[serde(default)]
    pub phone: Option<String>,
    /// Voice number (E.164).
    #[serde(default)]
    pub voice_number: Option<String>,
    /// Directory groups.
    #[serde(default)]
    pub groups: Vec<String>,
    /// Free attributes.
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
}

impl From<StartFlowRequest> for StartFlow {
    fn from(request: StartFlowRequest) -> Self {
        Self {
            kind: request.kind,
            user: request.user.map(|user| UserProfile {
                id: user.id,
                username: user.username,
                first_name: user.first_name,
                last_name: user.last_name,
                email: user.email,
                phone: user.phone,
                voice: user.voice_number,
                groups: user.groups,
                attributes: user.attributes,
                user_code_hash: None,
            }),
            application: request.application,
            client_ip: request.client_ip,
            client_device: request.client_device,
            dynamic_params: request.dynamic_params,
            template_id: request.template_id,
            return_url: request.return_url,
            one_time_device: request
                .one_time_device
                .map(|device| crate::flow::OneTimeDevice {
                    public_jwk: device.public_jwk,
                    name: device.name,
                    os: device.os,
                    os_version: device.os_version,
                    model: device.model,
                }),
        }
    }
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
