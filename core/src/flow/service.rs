//! Flows against the store, from the federation server's side: start (validated first,
//! so a bad request leaves nothing behind; then each kind's `start`), and the result,
//! picked up once.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Duration;

use serde::Serialize;

use super::machine::FirstPick;
use super::{
    Application, DeviceSummary, Event, Flow, FlowKind, FlowPolicy, Head, PairingOffer,
    device_authorization,
};
use crate::device::{Device, validate_label};
use crate::error::{AdapterError, FlowError};
use crate::ids::{DeviceId, FlowId, PairingKey, random_alphanumeric};
use crate::messages::Texts;
use crate::params::{DynamicParams, Message};
use crate::user::{self, UserId};
use crate::{Adapter, keys};

/// Longest accepted return URL.
const MAX_URL_LEN: usize = 2048;

/// What a federation server asks for.
pub struct StartFlow {
    /// `oob` or `transaction`.
    pub kind: FlowKind,
    /// The user, created on first sight and merged into the stored profile afterwards
    /// (absent for QR sign-on).
    pub user: Option<user::ProfileUpdate>,
    /// The application signed in to.
    pub application: Application,
    /// The browser's address, parsed where it entered.
    pub client_ip: Option<IpAddr>,
    /// The federation server's opaque id of the browser (a device cookie).
    pub client_device: Option<String>,
    /// Dynamic parameters (raw; validated here).
    pub dynamic_params: BTreeMap<String, String>,
    /// The template rendering the device's message.
    pub template_id: Option<String>,
    /// Where the browser returns when done.
    pub return_url: Option<String>,
    /// A device to authenticate with for this flow only.
    pub one_time_device: Option<OneTimeDevice>,
}

/// A device trusted for one flow only (raw; validated at flow start).
pub struct OneTimeDevice {
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

/// The outcome a federation server picks up, once.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FlowResult {
    /// The flow.
    pub flow_id: FlowId,
    /// `COMPLETED` (or `RESUME`), `FAILED` or `CANCELED`.
    pub status: &'static str,
    /// The user.
    pub subject: UserId,
    /// How the second factor was given (`push`), when it was.
    pub method: Option<String>,
    /// The device that approved.
    pub device_id: Option<DeviceId>,
    /// Authentication methods references (RFC 8176).
    pub amr: Vec<&'static str>,
    /// Authentication context class.
    pub acr: Option<&'static str>,
    /// When the decision was made (seconds since the epoch).
    pub completed_at: Option<u64>,
    /// The parameters the person approved (empty unless completed).
    pub dynamic_params: DynamicParams,
    /// Why it did not complete.
    pub reason: Option<String>,
    /// The browser's address, as the federation server gave it (the PingID connector's
    /// `accessingDevice.ip`).
    pub accessing_device: Option<AccessingDevice>,
    /// The device that gave the second factor (the connector's `authenticationDevice`).
    pub authentication_device: Option<AuthenticationDevice>,
    /// How the second factor was given, in the connector's terms (`authenticationType`:
    /// `PUSH`, `OTP`, `SMS`, `VOICE`, `EMAIL`, `TOTP`, ...).
    pub authentication_type: Option<&'static str>,
    /// A completed passwordless sign-in's one-time context, for "Finalize Passwordless
    /// Authentication" (seed 001).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub passwordless_context: Option<String>,
}

/// The device the person signed in from (the connector's `accessingDevice`).
#[derive(Clone, Debug, Serialize)]
pub struct AccessingDevice {
    /// Its IP address.
    pub ip: IpAddr,
}

/// The device that authenticated (the connector's `authenticationDevice`).
#[derive(Clone, Debug, Serialize)]
pub struct AuthenticationDevice {
    /// Its id.
    pub id: DeviceId,
}

pub(crate) fn parse_flow_id(raw: &str) -> Result<FlowId, AdapterError> {
    FlowId::parse(raw).ok_or(AdapterError::NotFound("flow"))
}

pub(crate) fn summaries(devices: &[Device], default: Option<&DeviceId>) -> Vec<DeviceSummary> {
    devices
        .iter()
        .map(|device| DeviceSummary {
            id: device.id.clone(),
            kind: device.widget_type().to_owned(),
            name: device.name.clone(),
            nickname: device.nickname.clone(),
            target: device.model.clone(),
            default: default == Some(&device.id),
            method: super::Method::PingidMobile,
            otp_enabled: device.otp_seed.is_some(),
            push_enabled: true,
            address: None,
            unusable: None,
            backup: false,
            code_length: None,
        })
        .collect()
}

fn validate_return_url(url: &str) -> Result<(), AdapterError> {
    // http(s), or an app's own scheme (registration returns control to the app); never a
    // scheme that runs or embeds content where the browser lands.
    let scheme_ok = url.split_once("://").is_some_and(|(scheme, rest)| {
        !rest.is_empty()
            && scheme
                .chars()
                .next()
                .is_some_and(|first| first.is_ascii_lowercase())
            && scheme.chars().all(|c| {
                c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '+' | '-' | '.')
            })
            && !matches!(scheme, "javascript" | "data" | "vbscript" | "file" | "blob")
    });
    if !scheme_ok || url.len() > MAX_URL_LEN || url.chars().any(|c| c.is_control() || c == ' ') {
        return Err(AdapterError::Invalid(format!(
            "returnUrl must be an http(s) or app-scheme URL of at most {MAX_URL_LEN} bytes"
        )));
    }
    Ok(())
}

impl Adapter {
    /// Checks a federation server's credentials (SHA-256 + constant-time compare).
    pub fn authenticate_client(&self, id: &str, secret: &str) -> Result<String, AdapterError> {
        let client = self
            .config()
            .adapter_clients
            .iter()
            .find(|client| client.id == id);
        // Hash even for an unknown id, so that timing does not tell which ids exist.
        let verified = match client {
            Some(client) => client.secret_sha256.verify(secret),
            None => {
                let _ = crate::config::SecretHash::of(secret);
                false
            }
        };
        match client {
            Some(client) if verified => Ok(client.id.clone()),
            _ => Err(AdapterError::Unauthenticated(
                "unknown client or wrong secret",
            )),
        }
    }

    /// Starts a flow: validates everything first, so a bad request leaves nothing behind.
    pub async fn start_flow(
        &self,
        client_id: &str,
        request: StartFlow,
    ) -> Result<Flow, AdapterError> {
        if request.kind == FlowKind::Ciba {
            return Err(AdapterError::Invalid(
                "CIBA requests start at the backchannel authentication endpoint".to_owned(),
            ));
        }
        // The stored profile, read once: merged with the start's user, and compared with
        // the result so that an unchanged profile is not written.
        let mut stored_profile = None;
        let user = match (request.kind, request.user) {
            (FlowKind::Qr, None) => None,
            (FlowKind::Qr, Some(_)) => {
                return Err(AdapterError::Invalid(
                    "a QR sign-on starts without a user: the scanning device tells who".to_owned(),
                ));
            }
            (FlowKind::Passwordless, None) => None,
            (FlowKind::Passwordless, Some(_)) => {
                return Err(AdapterError::Invalid(
                    "a passwordless sign-in starts without a user: the passkey tells who"
                        .to_owned(),
                ));
            }
            (_, Some(update)) => {
                // Merged with what is stored (or configured), then checked whole: a start
                // that omits a field keeps it.
                stored_profile = self.find_user(&update.id).await?;
                let user = update.merged_into(stored_profile.clone());
                user.validate().map_err(AdapterError::Invalid)?;
                Some(user)
            }
            (_, None) => return Err(AdapterError::Invalid("user is required".to_owned())),
        };
        let params = DynamicParams::parse(request.dynamic_params).map_err(AdapterError::Invalid)?;
        let texts = self.texts(user.as_ref().and_then(|user| user.language.as_deref()));
        let message = self.message(
            request.kind,
            request.template_id.as_deref(),
            &request.application,
            &params,
            texts,
        )?;
        if let Some(url) = &request.return_url {
            validate_return_url(url)?;
        }
        let client_ip = request.client_ip;
        validate_application(&request.application)?;
        if let Some(client_device) = &request.client_device {
            validate_label("clientDevice", client_device)?;
        }
        let one_time_key = match &request.one_time_device {
            Some(_) if !matches!(request.kind, FlowKind::Oob | FlowKind::Transaction) => {
                return Err(AdapterError::Invalid(
                    "oneTimeDevice is for oob and transaction flows".to_owned(),
                ));
            }
            Some(one_time) => {
                for (field, value) in [
                    ("oneTimeDevice.name", &one_time.name),
                    ("oneTimeDevice.os", &one_time.os),
                    ("oneTimeDevice.osVersion", &one_time.os_version),
                    ("oneTimeDevice.model", &one_time.model),
                ] {
                    validate_label(field, value)?;
                }
                Some(
                    crate::device_key::PublicDeviceKey::parse(&one_time.public_jwk)
                        .map_err(AdapterError::Invalid)?,
                )
            }
            None => None,
        };

        let store = self.store();
        let flow_ttl = Duration::from_secs(self.config().policy.flow_ttl_secs);
        let flow_id = FlowId::generate();
        // The user's devices are read when the flow is entered (`authenticate`), not
        // here: nothing is offered or sent before that.
        let user_id = match &user {
            Some(user) => {
                user::save(store, stored_profile.as_ref(), user).await?;
                user.id.clone()
            }
            None => UserId::anonymous(),
        };
        let mut devices = Vec::new();
        // A one-time device is the only device of its flow, lives as long as the flow, and
        // is written just ahead of the flow.
        let mut ahead = Vec::new();
        let one_time_device = match (request.one_time_device, one_time_key) {
            (Some(one_time), Some(public_key)) => {
                let one_time = Device {
                    one_time_flow: Some(flow_id.clone()),
                    id: DeviceId::generate(),
                    user_id: user_id.clone(),
                    name: one_time.name,
                    os: one_time.os,
                    os_version: one_time.os_version,
                    model: one_time.model,
                    nickname: None,
                    public_key,
                    paired_at: self.clock().now_secs(),
                    paired_at_ms: self.clock().now_ms(),
                    also_paired: Vec::new(),
                    one_time: true,
                    otp_seed: None,
                };
                ahead.push(super::engine::WriteAhead {
                    key: keys::device(&one_time.id),
                    value: serde_json::to_vec(&one_time).map_err(AdapterError::internal)?,
                    ttl: flow_ttl,
                });
                devices = vec![one_time.clone()];
                Some(one_time.id)
            }
            _ => None,
        };
        let now = self.clock().now_ms();
        let mut head = Head {
            id: flow_id,
            client_id: client_id.to_owned(),
            user_id,
            application: request.application,
            client_ip,
            client_device: request.client_device,
            params,
            message,
            return_url: request.return_url,
            created_at_ms: now,
            devices: summaries(&devices, None),
            result_picked_up: false,
            language: user.as_ref().and_then(|user| user.language.clone()),
            ciba: None,
            manage_devices: self.config().policy.manage_devices_in_flow,
            pushes_sent: 0,
            browser_binding: None,
            one_time_device,
            policy: FlowPolicy::default(),
            policy_group: user
                .as_ref()
                .and_then(|user| self.config().policies.group_of(&user.groups))
                .map(str::to_owned),
            otp_failures: 0,
            codes_sent: 0,
            enrolment: None,
            entering_app: None,
        };
        head.policy = super::mfa::flow_policy(self.policy_for(&head), request.kind);
        let transition = match request.kind {
            // Kept as it was for the clients that use it: the app signs a challenge.
            FlowKind::DeviceAuthorization => {
                let network = self.policy_for(&head).network_action(client_ip);
                device_authorization::start(head, network, random_alphanumeric(24))
            }
            // Nothing is sent before a browser or an app enters (`authenticate`).
            kind => super::entry::opening(head, kind)?,
        };
        self.insert_flow(transition, flow_ttl, ahead).await
    }

    /// The trusted devices a new device may be verified with (the mobile ones, those too
    /// old marked unusable, and the passcode devices that receive codes), and the one
    /// policy's device selection goes to at once: the primary (`default_device`), or
    /// none and the person picks.
    pub(crate) async fn primary_pick(
        &self,
        head: &mut Head,
        devices: &[Device],
        default: Option<&DeviceId>,
        passcode_devices: &[crate::otp_device::OtpDevice],
    ) -> Result<Option<FirstPick>, AdapterError> {
        let policy = self.policy_for(head);
        head.devices = summaries(devices, default);
        for (summary, device) in head.devices.iter_mut().zip(devices) {
            summary.unusable = policy.os_refusal(&device.os, &device.os_version);
        }
        head.devices.extend(
            passcode_devices
                .iter()
                .filter(|device| device.method.is_sent())
                .map(|device| {
                    let mut summary = super::mfa::otp_summary(device);
                    summary.default = default == Some(&device.id);
                    summary
                }),
        );
        let candidates = super::oob::usable(head);
        // Without a person's choice, the primary (or the only device) verifies; a
        // primary too old to use is refused by policy rather than silently replaced.
        let first = match policy.device_selection {
            crate::policy::DeviceSelection::DefaultDevice => head
                .devices
                .iter()
                .find(|device| device.default)
                .map(|device| &device.id)
                .or_else(|| policy.device_selection.first_device(&candidates, None))
                .cloned(),
            selection => selection.first_device(&candidates, default).cloned(),
        };
        match first {
            Some(first) => Ok(Some(self.first_pick(head, &first).await?)),
            None => Ok(None),
        }
    }

    /// A fresh pairing key for a flow's new device, living no longer than the flow. Only
    /// the transition that shows it writes it.
    pub(crate) fn pairing_offer(&self, head: &Head, now: u64) -> PairingOffer {
        let flow_ends = head.created_at_ms + self.config().policy.flow_ttl_secs * 1000;
        let ttl_ms = (self.config().policy.pairing_key_ttl_secs * 1000)
            .min(flow_ends.saturating_sub(now))
            .max(1000);
        PairingOffer {
            pairing_key: PairingKey::generate().expose().to_owned(),
            expires_at_ms: now + ttl_ms,
        }
    }

    /// The texts for a user whose language is `language`, else in the configured default.
    pub(crate) fn texts(&self, language: Option<&str>) -> Texts {
        Texts::for_language(language, &self.config().pages.default_language)
    }

    fn message(
        &self,
        kind: FlowKind,
        template_id: Option<&str>,
        application: &Application,
        params: &DynamicParams,
        texts: Texts,
    ) -> Result<Message, AdapterError> {
        match template_id {
            Some(id) => {
                let template = self.config().templates.get(id).ok_or_else(|| {
                    AdapterError::Invalid(format!("unknown templateId `{}`", id.escape_default()))
                })?;
                template.render(params).map_err(AdapterError::Invalid)
            }
            None if kind == FlowKind::Transaction => Err(AdapterError::Invalid(
                "a transaction flow needs a templateId".into(),
            )),
            None if kind == FlowKind::NewDevice => Ok(Message {
                title: texts.text("new-device-title", &[])?,
                body: texts.text("new-device-body", &[("app", &application.name)])?,
            }),
            None => Ok(Message {
                title: texts.text("push-title", &[])?,
                body: texts.text("push-body", &[("app", &application.name)])?,
            }),
        }
    }

    /// The result of an ended flow, for the client that started it, exactly once.
    pub async fn pick_up_result(
        &self,
        client_id: &str,
        id: &str,
    ) -> Result<FlowResult, AdapterError> {
        let id = &parse_flow_id(id)?;
        let flow = self
            .on_latest(id, |(flow, version)| async move {
                if flow.kind() == FlowKind::Ciba || flow.client_id != client_id {
                    return Err(AdapterError::NotFound("flow"));
                }
                let current = Some((flow, version));
                self.update_flow(id, current, |_| Ok(Event::PickUp)).await
            })
            .await;
        let flow = match flow {
            Err(AdapterError::Flow(FlowError::AlreadyPickedUp)) => {
                return Err(AdapterError::NotFound("result"));
            }
            other => other?,
        };
        let status = flow.status(self.clock().now_ms());
        let approval = flow.completed_approval();
        let passwordless_context = match flow.kind() {
            FlowKind::Passwordless => self.issue_passwordless_context(&flow).await?,
            _ => None,
        };
        Ok(FlowResult {
            flow_id: flow.id.clone(),
            status: status.outcome(),
            subject: flow.user_id.clone(),
            method: approval.map(|approval| approval.method.as_str().to_owned()),
            device_id: approval.map(|approval| approval.device_id.clone()),
            amr: approval.map_or_else(Vec::new, |approval| approval.method.amr().to_vec()),
            acr: approval.and_then(|approval| approval.method.acr()),
            completed_at: approval.map(|approval| approval.decided_at_ms / 1000),
            dynamic_params: if approval.is_some() {
                flow.params.clone()
            } else {
                DynamicParams::default()
            },
            reason: flow.failure_reason().map(str::to_owned),
            accessing_device: flow.client_ip.map(|ip| AccessingDevice { ip }),
            authentication_device: approval.map(|approval| AuthenticationDevice {
                id: approval.device_id.clone(),
            }),
            authentication_type: approval.map(|approval| approval.method.authentication_type()),
            passwordless_context,
        })
    }
}

pub(super) fn validate_application(application: &Application) -> Result<(), AdapterError> {
    validate_label("application.name", &application.name)?;
    if let Some(id) = &application.id {
        validate_label("application.id", id)?;
    }
    if let Some(icon) = &application.icon_url
        && (!icon.starts_with("https://") && !icon.starts_with("http://")
            || icon.len() > MAX_URL_LEN)
    {
        return Err(AdapterError::Invalid(
            "application.iconUrl must be an http(s) URL".into(),
        ));
    }
    Ok(())
}
