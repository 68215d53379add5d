//! Flows against the store: start, act, wait, answer from the device, pick up the result.
//! Each change is read → [`apply`] → one compare-and-set that also wakes the waiters.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;

use super::{Application, DeviceSummary, Event, Flow, FlowKind, FlowState, Status, apply};
use crate::device::{self, Device, validate_label};
use crate::error::{AdapterError, FlowError};
use crate::ids::{DeviceId, FlowId};
use crate::params::{DynamicParams, Message};
use crate::store::{StoreError, Ttl};
use crate::user::{self, UserId, UserProfile};
use crate::{Adapter, keys};

/// How many times a change is retried when a concurrent write moved the flow on.
const CAS_ATTEMPTS: usize = 4;
/// Longest accepted return URL.
const MAX_URL_LEN: usize = 2048;
/// The `acr` of a push approved with a device key.
pub const ACR_MOBILE_PUSH: &str = "urn:assent:acr:mobile-push";
/// The `acr` of a one-time passcode.
pub const ACR_OTP: &str = "urn:assent:acr:otp";

/// Milliseconds since the epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| {
            u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX)
        })
}

/// What a federation server asks for.
pub struct StartFlow {
    /// `oob` or `transaction`.
    pub kind: FlowKind,
    /// The user, created on first sight and updated afterwards (absent for QR sign-on).
    pub user: Option<UserProfile>,
    /// The application signed in to.
    pub application: Application,
    /// The browser's address.
    pub client_ip: Option<String>,
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
}

/// A flow and the version a compare-and-set must name to replace it.
pub(crate) type Versioned = (Flow, u64);

pub(crate) fn decode(bytes: &[u8]) -> Result<Flow, AdapterError> {
    serde_json::from_slice(bytes).map_err(AdapterError::internal)
}

pub(crate) fn encode(flow: &Flow) -> Result<Vec<u8>, AdapterError> {
    serde_json::to_vec(flow).map_err(AdapterError::internal)
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
        let user = match (request.kind, request.user) {
            (FlowKind::Qr, None) => None,
            (FlowKind::Qr, Some(_)) => {
                return Err(AdapterError::Invalid(
                    "a QR sign-on starts without a user: the scanning device tells who".to_owned(),
                ));
            }
            (_, Some(user)) => {
                user.validate().map_err(AdapterError::Invalid)?;
                Some(user)
            }
            (_, None) => return Err(AdapterError::Invalid("user is required".to_owned())),
        };
        let params = DynamicParams::parse(request.dynamic_params).map_err(AdapterError::Invalid)?;
        let message = self.message(
            request.kind,
            request.template_id.as_deref(),
            &request.application,
            &params,
        )?;
        if let Some(url) = &request.return_url {
            validate_return_url(url)?;
        }
        if let Some(ip) = &request.client_ip {
            ip.parse::<IpAddr>().map_err(|_| {
                AdapterError::Invalid("clientIp is not an IPv4 or IPv6 address".into())
            })?;
        }
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
        let (user_id, mut devices, mut default) = match &user {
            Some(user) => {
                user::upsert(store, user).await?;
                let devices = device::list_for_user(store, &user.id).await?;
                let default = device::default_for_user(store, &user.id).await?;
                (user.id.clone(), devices, default)
            }
            None => (UserId::anonymous(), Vec::new(), None),
        };
        // A one-time device is the only device of its flow, and lives as long as the flow.
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
                    paired_at: device::unix_now(),
                    also_paired: Vec::new(),
                    one_time: true,
                    otp_seed: None,
                };
                device::save_one_time(store, &one_time, flow_ttl).await?;
                devices = vec![one_time.clone()];
                default = None;
                Some(one_time.id)
            }
            _ => None,
        };
        let now = now_ms();
        let mut flow = Flow {
            id: flow_id,
            kind: request.kind,
            client_id: client_id.to_owned(),
            user_id,
            application: request.application,
            client_ip: request.client_ip,
            client_device: request.client_device,
            params,
            message,
            return_url: request.return_url,
            created_at_ms: now,
            devices: summaries(&devices, default.as_ref()),
            state: FlowState::DeviceSelectionRequired,
            result_picked_up: false,
            ciba: None,
            manage_devices: self.config().policy.manage_devices_in_flow,
            pushes_sent: 0,
            browser_binding: None,
            one_time_device,
            policy: Default::default(),
            otp_failures: 0,
            codes_sent: 0,
            enrolment: None,
        };
        flow.policy = super::mfa::flow_policy(self.policy_for(&flow), flow.kind);
        let verify_with_primary = request.kind == FlowKind::NewDevice
            && self.config().policy.additional_trusted_devices
                == crate::config::AdditionalTrustedDevices::VerifyWithPrimary;
        let enrol_now = matches!(request.kind, FlowKind::Registration | FlowKind::NewDevice)
            && !verify_with_primary;
        let ip = flow
            .client_ip
            .as_deref()
            .and_then(|ip| ip.parse::<IpAddr>().ok());
        let denied =
            self.policy_for(&flow).network_action(ip) == Some(crate::policy::NetworkAction::Deny);
        let mut outbound = None;
        match devices.as_slice() {
            _ if denied => {
                flow.state = FlowState::MfaFailed {
                    reason: "sign-in from this network is not allowed".to_owned(),
                };
            }
            _ if matches!(request.kind, FlowKind::Oob | FlowKind::Transaction)
                && flow.one_time_device.is_none() =>
            {
                if let Some(profile) = &user {
                    outbound = self
                        .apply_policy_at_start(&mut flow, profile, &devices, default.as_ref())
                        .await?;
                }
            }
            // No mobile device: a passcode device (SMS, voice, email) is the primary.
            [] if verify_with_primary => {
                let primary = crate::otp_device::list(store, &flow.user_id)
                    .await?
                    .into_iter()
                    .find(|device| device.method.is_sent());
                match primary {
                    Some(primary) => {
                        flow.devices = vec![super::mfa::otp_summary(&primary)];
                        let selection = self.prepare_selection(&flow, &primary.id).await?;
                        flow = apply(&flow, selection.event, now)?;
                        outbound = selection.outbound;
                    }
                    None => {
                        flow.state = FlowState::MfaFailed {
                            reason: "the user has no primary device to verify the new one with"
                                .to_owned(),
                        };
                    }
                }
            }
            _ if verify_with_primary => {
                // Only the primary (the default device, else the first paired) may approve.
                let primary = devices
                    .iter()
                    .find(|device| Some(&device.id) == default.as_ref())
                    .or_else(|| devices.first())
                    .ok_or(FlowError::NoUsableDevice)?;
                flow.devices = summaries(std::slice::from_ref(primary), default.as_ref());
                let refusal = self
                    .policy_for(&flow)
                    .os_refusal(&primary.os, &primary.os_version);
                flow.devices[0].unusable = refusal;
                self.select_at_start(&mut flow, &primary.id).await?;
            }
            _ if request.kind == FlowKind::Qr => {
                flow.state = self.fresh_qr_code(&flow.id, now);
            }
            _ if request.kind == FlowKind::DeviceAuthorization => {
                flow.state = FlowState::MobilePayloadRequired {
                    nonce: crate::ids::random_alphanumeric(24),
                };
            }
            _ if enrol_now => {
                let (pairing_key, expires_at_ms) = self.new_device_key(&flow).await?;
                flow.state = FlowState::MobileActivationRequired {
                    pairing_key,
                    expires_at_ms,
                };
            }
            // What is left: a flow with a one-time device, its only device.
            _ => {
                let only = flow
                    .devices
                    .first()
                    .map(|device| device.id.clone())
                    .ok_or(FlowError::NoUsableDevice)?;
                self.select_at_start(&mut flow, &only).await?;
            }
        }
        self.insert_flow(&flow, flow_ttl).await?;
        match flow.status(now) {
            Status::MfaFailed => self.count_finished(flow.kind.as_str(), "failed"),
            Status::Completed | Status::Resume => {
                self.count_finished(flow.kind.as_str(), "skipped");
            }
            _ => {}
        }
        self.send_push(&flow).await?;
        self.send_outbound(outbound).await;
        Ok(flow)
    }

    /// A pairing key for the new device of a `new_device` flow, living no longer than the
    /// flow; returns the key and its expiry (ms).
    pub(crate) async fn new_device_key(&self, flow: &Flow) -> Result<(String, u64), AdapterError> {
        let now = now_ms();
        let flow_ends = flow.created_at_ms + self.config().policy.flow_ttl_secs * 1000;
        let ttl_ms = (self.config().policy.pairing_key_ttl_secs * 1000)
            .min(flow_ends.saturating_sub(now))
            .max(1000);
        let key = crate::pairing::issue(
            self.store(),
            &flow.user_id,
            Some(&flow.id),
            Duration::from_millis(ttl_ms),
        )
        .await?;
        Ok((key.expose().to_owned(), now + ttl_ms))
    }

    /// Stores a new flow (its id is fresh: an existing record is a collision) and counts it.
    pub(crate) async fn insert_flow(&self, flow: &Flow, ttl: Duration) -> Result<(), AdapterError> {
        if !self
            .store()
            .insert(&keys::flow(&flow.id), &encode(flow)?, Ttl::Set(ttl))
            .await?
        {
            return Err(AdapterError::internal("flow id collision"));
        }
        self.metrics()
            .flows_started
            .with_label_values(&[flow.kind.as_str()])
            .inc();
        Ok(())
    }

    fn message(
        &self,
        kind: FlowKind,
        template_id: Option<&str>,
        application: &Application,
        params: &DynamicParams,
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
                title: "New device".to_owned(),
                body: format!(
                    "Someone wants to add a new device to your {} account. Approve?",
                    application.name
                ),
            }),
            None => Ok(Message {
                title: "Sign-in request".to_owned(),
                body: format!("Approve sign-in to {}?", application.name),
            }),
        }
    }

    pub(crate) fn push_timeout_ms(&self) -> u64 {
        self.config().policy.push_timeout_secs.saturating_mul(1000)
    }

    /// Puts a freshly sent push on its device's pending list and wakes the device.
    pub(crate) async fn send_push(&self, flow: &Flow) -> Result<(), AdapterError> {
        let FlowState::PushWaiting { push } = &flow.state else {
            return Ok(());
        };
        let store = self.store();
        // The list outlives the longest request it can hold (an out-of-band push or a CIBA
        // request), so that re-setting its expiry on each add never drops a live one.
        let longest = self
            .config()
            .policy
            .push_timeout_secs
            .max(self.config().ciba.max_expiry_secs);
        let ttl = Ttl::Set(Duration::from_secs(longest + 60));
        store
            .index_add(
                &keys::device_pending(&push.device_id),
                push.auth_id.as_str(),
                ttl,
                Some(&keys::device_channel(&push.device_id)),
            )
            .await?;
        self.announce_push(flow);
        Ok(())
    }

    pub(crate) async fn load_flow(&self, id: &FlowId) -> Result<Flow, AdapterError> {
        Ok(self.load_versioned(id).await?.0)
    }

    /// A browser-driven flow and its version.
    pub(crate) async fn browser_flow(&self, id: &FlowId) -> Result<Versioned, AdapterError> {
        self.load_versioned(id).await
    }

    /// A browser-driven flow and its version.
    pub(crate) async fn load_versioned(&self, id: &FlowId) -> Result<Versioned, AdapterError> {
        let (flow, version) = self.load_any(id).await?;
        if flow.kind == FlowKind::Ciba {
            return Err(AdapterError::NotFound("flow"));
        }
        Ok((flow, version))
    }

    /// Any flow and its version.
    pub(crate) async fn load_any(&self, id: &FlowId) -> Result<Versioned, AdapterError> {
        let record = self
            .store()
            .get(&keys::flow(id))
            .await?
            .ok_or(AdapterError::NotFound("flow"))?;
        Ok((decode(&record.value)?, record.version))
    }

    /// Applies the event `make_event` derives from the current flow, with one
    /// compare-and-set that also wakes the flow's waiters; retried when it loses a race,
    /// re-deriving the event from the new state each time.
    pub(crate) async fn update_flow(
        &self,
        id: &FlowId,
        current: Option<Versioned>,
        mut make_event: impl FnMut(&Flow) -> Result<Event, AdapterError>,
    ) -> Result<Flow, AdapterError> {
        let now = now_ms();
        self.step_flow(id, current, |flow| {
            Ok((apply(flow, make_event(flow)?, now)?, ()))
        })
        .await
        .map(|(flow, ())| flow)
    }

    /// The compare-and-set loop under every change: `step` computes the next flow (and an
    /// answer) from the current one; a lost race re-reads and steps again.
    pub(crate) async fn step_flow<T>(
        &self,
        id: &FlowId,
        mut current: Option<Versioned>,
        mut step: impl FnMut(&Flow) -> Result<(Flow, T), AdapterError>,
    ) -> Result<(Flow, T), AdapterError> {
        let store = self.store();
        let key = keys::flow(id);
        let channel = keys::flow_channel(id);
        for _ in 0..CAS_ATTEMPTS {
            // The caller's fresh read serves the first attempt; a lost race re-reads.
            let (flow, version) = match current.take() {
                Some(current) => current,
                None => self.load_any(id).await?,
            };
            let (next, answer) = step(&flow)?;
            match store
                .transition(&key, version, &encode(&next)?, Ttl::Keep, Some(&channel))
                .await
            {
                Ok(_) => {
                    self.count_outcome(&flow, &next);
                    return Ok((next, answer));
                }
                Err(StoreError::Conflict) => continue,
                Err(StoreError::NotFound) => return Err(AdapterError::NotFound("flow")),
                Err(error) => return Err(error.into()),
            }
        }
        Err(AdapterError::Conflict(
            "the flow is changing concurrently; retry".to_owned(),
        ))
    }

    fn count_outcome(&self, before: &Flow, after: &Flow) {
        let now = now_ms();
        let (was, is) = (before.status(now), after.status(now));
        if was == is {
            return;
        }
        let kind = after.kind.as_str();
        let outcome = match is {
            Status::Completed | Status::Resume => "completed",
            Status::PushConfirmationRejected => "rejected",
            Status::MfaFailed => "failed",
            // Canceling after a denial or a failure was counted when it happened.
            Status::Failed
                if matches!(was, Status::PushConfirmationRejected | Status::MfaFailed) =>
            {
                return;
            }
            Status::Failed => "failed",
            Status::Canceled => "canceled",
            _ => return,
        };
        self.count_finished(kind, outcome);
    }

    fn count_finished(&self, kind: &str, outcome: &str) {
        self.metrics()
            .flows_finished
            .with_label_values(&[kind, outcome])
            .inc();
    }

    /// The result of an ended flow, for the client that started it, exactly once.
    pub async fn pick_up_result(
        &self,
        client_id: &str,
        id: &str,
    ) -> Result<FlowResult, AdapterError> {
        let id = parse_flow_id(id)?;
        let (flow, version) = self.load_versioned(&id).await?;
        if flow.client_id != client_id {
            return Err(AdapterError::NotFound("flow"));
        }
        let current = Some((flow, version));
        let flow = match self.update_flow(&id, current, |_| Ok(Event::PickUp)).await {
            Err(AdapterError::Flow(FlowError::AlreadyPickedUp)) => {
                return Err(AdapterError::NotFound("result"));
            }
            other => other?,
        };
        let status = flow.status(now_ms());
        let approval = match &flow.state {
            FlowState::Completed { approval } => Some(approval),
            _ => None,
        };
        Ok(FlowResult {
            flow_id: flow.id.clone(),
            status: status.outcome(),
            subject: flow.user_id.clone(),
            method: approval.map(|approval| approval.method.clone()),
            device_id: approval.map(|approval| approval.device_id.clone()),
            // RFC 8176: a push is the device key plus the person's approval on it; a code
            // is an OTP (by SMS or a call: `sms`, `tel`); a registration only shows that
            // a new key was enrolled.
            amr: match approval.map(|approval| approval.method.as_str()) {
                Some("push") => vec!["mfa", "swk", "user"],
                Some("sms") => vec!["mfa", "sms", "otp"],
                Some("voice") => vec!["mfa", "tel", "otp"],
                Some("email" | "totp") => vec!["mfa", "otp"],
                Some("mobile_otp") => vec!["mfa", "swk", "otp"],
                // Methods set up by a user who had none: no second factor was given.
                Some("enrolment") => vec![],
                Some(_) => vec!["swk"],
                None => vec![],
            },
            acr: approval.and_then(|approval| match approval.method.as_str() {
                "push" => Some(ACR_MOBILE_PUSH),
                "sms" | "voice" | "email" | "totp" | "mobile_otp" => Some(ACR_OTP),
                _ => None,
            }),
            completed_at: approval.map(|approval| approval.decided_at_ms / 1000),
            dynamic_params: if approval.is_some() {
                flow.params.clone()
            } else {
                DynamicParams::default()
            },
            reason: flow.failure_reason().map(str::to_owned),
        })
    }
}

fn validate_application(application: &Application) -> Result<(), AdapterError> {
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
