//! The policy-driven side of out-of-band flows: which devices a flow offers, choosing one
//! (a push, or a passcode sent or computed), checking passcodes, resending them, and
//! setting up the methods policy makes mandatory.

use std::net::IpAddr;
use std::time::Duration;

use rand::Rng;
use rand::seq::SliceRandom;
use sha2::{Digest, Sha256};

use super::service::{now_ms, summaries};
use super::{DeviceSummary, Enrolment, Event, Flow, FlowKind, FlowState, Method, Status, apply};
use crate::device::{self, Device};
use crate::error::{AdapterError, FlowError};
use crate::ids::{AuthId, DeviceId, FlowId};
use crate::notify::{Channel, Message};
use crate::otp::{self, SentCode};
use crate::otp_device::{self, OtpDevice};
use crate::policy::{MfaPolicy, NetworkAction};
use crate::store::Ttl;
use crate::user::{UserId, UserProfile};
use crate::{Adapter, keys};

/// A message to send once the flow that refers to it is stored.
pub(crate) struct Outbound(Message);

/// What choosing a device leads to: the event to apply, and what to send after.
pub(crate) struct Selection {
    pub(crate) event: Event,
    pub(crate) outbound: Option<Outbound>,
}

/// The longest phone number (E.164: 15 digits and the `+`).
const MAX_PHONE_LEN: usize = 16;
/// The longest email address (RFC 5321).
const MAX_EMAIL_LEN: usize = 254;

impl Adapter {
    /// The policy of a flow's application.
    pub(crate) fn policy_for(&self, flow: &Flow) -> &MfaPolicy {
        self.config()
            .policies
            .for_application(flow.application.id.as_deref())
    }

    /// The devices a flow offers now, under its policy (after the person managed them).
    pub(crate) async fn offered_now(
        &self,
        flow: &Flow,
    ) -> Result<Vec<DeviceSummary>, AdapterError> {
        let store = self.store();
        let profile = crate::user::find(store, &flow.user_id)
            .await?
            .ok_or(AdapterError::NotFound("user"))?;
        let mobile = device::list_for_user(store, &flow.user_id).await?;
        let default = device::default_for_user(store, &flow.user_id).await?;
        let otp_devices = otp_device::list(store, &flow.user_id).await?;
        let mut offered = offered_devices(
            self.policy_for(flow),
            &profile,
            &mobile,
            default.as_ref(),
            &otp_devices,
        );
        if flow.kind == FlowKind::Transaction {
            offered.retain(|device| device.method == Method::PingidMobile && !device.backup);
        }
        Ok(offered)
    }

    /// Sets an out-of-band or transaction flow up under its policy: network rules, a
    /// recent MFA, the devices offered (enrolled, backups), mandatory methods; then picks
    /// the device when there is only one. Returns what to send once the flow is stored.
    pub(crate) async fn apply_policy_at_start(
        &self,
        flow: &mut Flow,
        profile: &UserProfile,
        mobile: &[Device],
        default: Option<&DeviceId>,
    ) -> Result<Option<Outbound>, AdapterError> {
        let policy = self.policy_for(flow);
        let signed_only = flow.kind == FlowKind::Transaction;
        let ip = flow
            .client_ip
            .as_deref()
            .and_then(|ip| ip.parse::<IpAddr>().ok());
        let network = policy.network_action(ip);
        if ip.is_none()
            && policy
                .network_rules
                .iter()
                .any(|rule| rule.action == NetworkAction::Deny)
        {
            flow.state = FlowState::MfaFailed {
                reason: "the network policy needs the client's address (clientIp)".to_owned(),
            };
            return Ok(None);
        }
        // Transactions always need the device's signature over what is approved; only
        // sign-ins may be let through by the network or a recent MFA.
        if flow.kind == FlowKind::Oob {
            if network == Some(NetworkAction::Bypass) {
                flow.state = FlowState::Skipped {
                    reason: "sign-in from a trusted network".to_owned(),
                };
                return Ok(None);
            }
            if network != Some(NetworkAction::Require)
                && let Some(origin) = recent_origin(policy, flow)
                && self
                    .store()
                    .get(&keys::recent_mfa(&flow.user_id, &origin))
                    .await?
                    .is_some()
            {
                flow.state = FlowState::Skipped {
                    reason: "MFA completed recently from the same device and address".to_owned(),
                };
                return Ok(None);
            }
        }

        let otp_devices = otp_device::list(self.store(), &flow.user_id).await?;
        flow.devices = offered_devices(policy, profile, mobile, default, &otp_devices);
        if signed_only {
            flow.devices
                .retain(|device| device.method == Method::PingidMobile && !device.backup);
        }
        // Whether the user has anything at all to prove themselves with: only a user with
        // nothing may set methods up before giving a second factor.
        let has_nothing = mobile.is_empty() && otp_devices.is_empty() && flow.devices.is_empty();
        let enrolled: Vec<Method> = mobile
            .iter()
            .map(|_| Method::PingidMobile)
            .chain(otp_devices.iter().map(|device| device.method))
            .collect();
        let missing: Vec<Method> = policy
            .mandatory_authentication_methods
            .iter()
            .copied()
            .filter(|method| !enrolled.contains(method))
            .collect();
        if !missing.is_empty() && !signed_only {
            flow.enrolment = Some(Enrolment {
                missing,
                authenticated: None,
            });
        }

        let candidates: Vec<DeviceId> = flow
            .devices
            .iter()
            .filter(|device| device.usable() && !device.backup)
            .map(|device| device.id.clone())
            .collect();
        let backups = flow.devices.iter().any(|device| device.backup);
        match candidates.as_slice() {
            [] if flow.enrolment.is_some() && has_nothing => {
                flow.state = FlowState::SetupRequired;
            }
            [] if backups => flow.state = FlowState::DeviceSelectionRequired,
            [] if flow.kind == FlowKind::Oob
                && flow.devices.is_empty()
                && self.config().policy.enrol_on_the_spot =>
            {
                let (pairing_key, expires_at_ms) = self.new_device_key(flow).await?;
                flow.state = FlowState::MobileActivationRequired {
                    pairing_key,
                    expires_at_ms,
                };
            }
            [] => {
                let reason = flow
                    .devices
                    .iter()
                    .find_map(|device| device.unusable.clone())
                    .unwrap_or_else(|| {
                        "the user has no paired device: register one first".to_owned()
                    });
                flow.state = FlowState::MfaFailed { reason };
            }
            [only] => match self.prepare_selection(flow, only).await {
                Ok(selection) => {
                    *flow = apply(flow, selection.event, now_ms())?;
                    return Ok(selection.outbound);
                }
                // Over the push limit: another method may still do, else the sign-in
                // fails with the reason.
                Err(AdapterError::Flow(FlowError::PushLimited)) if flow.devices.len() > 1 => {
                    flow.state = FlowState::DeviceSelectionRequired;
                }
                Err(AdapterError::Flow(FlowError::PushLimited)) => {
                    flow.state = FlowState::MfaFailed {
                        reason: FlowError::PushLimited.to_string(),
                    };
                }
                Err(error) => return Err(error),
            },
            _ => flow.state = FlowState::DeviceSelectionRequired,
        }
        Ok(None)
    }

    /// Picks the one device a flow starts with, through the policy (push limit, OS
    /// minimum); a refusal fails the flow with its reason.
    pub(crate) async fn select_at_start(
        &self,
        flow: &mut Flow,
        device: &DeviceId,
    ) -> Result<(), AdapterError> {
        match self.prepare_selection(flow, device).await {
            Ok(selection) => *flow = apply(flow, selection.event, now_ms())?,
            Err(AdapterError::Flow(
                refused @ (FlowError::PushLimited | FlowError::DeviceRefused(_)),
            )) => {
                flow.state = FlowState::MfaFailed {
                    reason: refused.to_string(),
                };
            }
            Err(error) => return Err(error),
        }
        Ok(())
    }

    /// What picking `device` in `flow` does: a push (within the user's push limit), or a
    /// passcode sent to it, or a passcode it computes itself.
    pub(crate) async fn prepare_selection(
        &self,
        flow: &Flow,
        device: &DeviceId,
    ) -> Result<Selection, AdapterError> {
        let chosen = flow
            .devices
            .iter()
            .find(|known| known.id == *device)
            .ok_or(FlowError::UnknownDevice)?;
        if let Some(reason) = &chosen.unusable {
            return Err(FlowError::DeviceRefused(reason.clone()).into());
        }
        let policy = self.policy_for(flow);
        if chosen.method == Method::PingidMobile {
            // The flow's own cap first, so that a refused push does not spend the user's.
            if flow.pushes_sent >= self.config().policy.max_pushes_per_flow {
                return Err(FlowError::TooManyPushes.into());
            }
            self.count_push(&flow.user_id, policy).await?;
            let number_match = flow.policy.number_matching.then(number_match);
            return Ok(Selection {
                event: Event::SelectDevice {
                    device: device.clone(),
                    auth_id: AuthId::generate(&flow.id),
                    timeout_ms: self.push_timeout_ms(),
                    max_pushes: self.config().policy.max_pushes_per_flow,
                    number_match,
                },
                outbound: None,
            });
        }
        match &chosen.address {
            Some(address) if chosen.method.is_sent() => {
                check_send_allowed(flow, policy)?;
                self.count_send(&flow.user_id, address, policy).await?;
                let (sent, outbound) = self.new_code(flow, chosen.method, address, policy, 1)?;
                Ok(Selection {
                    event: Event::OtpDeviceSelected {
                        device: device.clone(),
                        sent: Some(sent),
                    },
                    outbound: Some(outbound),
                })
            }
            _ => Ok(Selection {
                event: Event::OtpDeviceSelected {
                    device: device.clone(),
                    sent: None,
                },
                outbound: None,
            }),
        }
    }

    /// Counts one event in a sliding window of `window_secs` (a limit of 0 counts nothing);
    /// `refused` when the window is already full. One atomic store call, shared by every
    /// instance.
    async fn within_limit(
        &self,
        key: &str,
        limit: u32,
        window_secs: u64,
        refused: impl FnOnce() -> FlowError,
    ) -> Result<(), AdapterError> {
        if limit == 0 {
            return Ok(());
        }
        let window = Duration::from_secs(window_secs);
        match self.store().rate_limit(key, limit, window).await? {
            true => Ok(()),
            false => Err(refused().into()),
        }
    }

    /// Counts a push against the user's limit.
    pub(crate) async fn count_push(
        &self,
        user: &UserId,
        policy: &MfaPolicy,
    ) -> Result<(), AdapterError> {
        self.within_limit(
            &keys::user_pushes(user),
            policy.push_limit,
            policy.push_limit_window_secs,
            || FlowError::PushLimited,
        )
        .await
    }

    /// Counts a passcode tried by the user, across sign-ins: per-flow wrong tries alone would
    /// let someone with the password guess on by starting new sign-ins.
    async fn count_attempt(&self, user: &UserId, policy: &MfaPolicy) -> Result<(), AdapterError> {
        self.within_limit(
            &keys::user_otp_attempts(user),
            policy.otp_attempt_limit,
            policy.otp_attempt_window_secs,
            || {
                FlowError::Throttled(
                    "too many passcodes tried for this user; try again later".to_owned(),
                )
            },
        )
        .await
    }

    /// Counts a sent passcode against the user's limit and the destination's (against SMS
    /// pumping to numbers typed at enrolment).
    async fn count_send(
        &self,
        user: &UserId,
        address: &str,
        policy: &MfaPolicy,
    ) -> Result<(), AdapterError> {
        let refused = || {
            FlowError::Throttled(
                "too many passcodes sent to this user or address; try again later".to_owned(),
            )
        };
        let (limit, window) = (policy.otp_send_limit, policy.otp_send_limit_window_secs);
        self.within_limit(&keys::user_sends(user), limit, window, refused)
            .await?;
        self.within_limit(&keys::address_sends(address), limit, window, refused)
            .await
    }

    /// A fresh code for `address`, remembered hashed, and the message carrying it.
    fn new_code(
        &self,
        flow: &Flow,
        method: Method,
        address: &str,
        policy: &MfaPolicy,
        sends: u32,
    ) -> Result<(SentCode, Outbound), AdapterError> {
        let code = otp::random_code(policy.otp_length);
        let now = now_ms();
        let sent = SentCode::new(&code, now, policy.otp_ttl_secs * 1000, sends);
        let minutes = policy.otp_ttl_secs.div_ceil(60);
        let application = &flow.application.name;
        let (channel, text) = match method {
            Method::Sms => (
                Channel::Sms,
                format!("{code} is your {application} sign-in code. It expires in {minutes} min."),
            ),
            Method::Voice => {
                let spoken: Vec<String> = code.chars().map(String::from).collect();
                (
                    Channel::Voice,
                    format!(
                        "Your {application} sign-in code is {}. Again: {}.",
                        spoken.join(", "),
                        spoken.join(", ")
                    ),
                )
            }
            Method::Email => (
                Channel::Email,
                format!(
                    "Your {application} sign-in code is {code}.\n\nIt expires in {minutes} \
                     minutes. If you did not try to sign in, change your password."
                ),
            ),
            Method::PingidMobile | Method::Totp => {
                return Err(AdapterError::internal("a computed code is never sent"));
            }
        };
        let text = match &flow.policy.admin_message {
            Some(message) => format!("{text}\n\n{message}"),
            None => text,
        };
        let message = Message {
            channel,
            to: address.to_owned(),
            subject: format!("Your {application} sign-in code"),
            text,
            data: serde_json::json!({ "flowId": flow.id.as_str() }),
        };
        Ok((sent, Outbound(message)))
    }

    /// Sends what a stored flow refers to; a failure is counted and logged, and the
    /// person may resend or choose another method.
    pub(crate) async fn send_outbound(&self, outbound: Option<Outbound>) {
        if let Some(Outbound(message)) = outbound {
            let _ = self.delivery().deliver(&message).await;
        }
    }

    /// Announces a push through the push sender, off the request; when it cannot be
    /// delivered and policy says so, the flow falls back to the app's own passcode.
    pub(crate) fn announce_push(&self, flow: &Flow) {
        let FlowState::PushWaiting { push } = &flow.state else {
            return;
        };
        if !self.delivery().has(Channel::Push) {
            return;
        }
        let message = Message {
            channel: Channel::Push,
            to: push.device_id.to_string(),
            subject: flow.message.title.clone(),
            text: flow.message.body.clone(),
            data: serde_json::json!({
                "authId": push.auth_id.as_str(),
                "userId": flow.user_id.as_str(),
                "kind": flow.kind.as_str(),
                "silent": push.silent,
            }),
        };
        let fallback = flow.policy.otp_fallback
            && flow
                .devices
                .iter()
                .any(|device| device.id == push.device_id && device.otp_enabled);
        let (adapter, flow_id, device) = (self.clone(), flow.id.clone(), push.device_id.clone());
        let auth_id = push.auth_id.clone();
        tokio::spawn(async move {
            if adapter.delivery().deliver(&message).await.is_ok() || !fallback {
                return;
            }
            let result = adapter
                .update_flow(&flow_id, None, |flow| {
                    // Only the push that failed falls back, and only while it waits.
                    if flow.push().is_none_or(|push| push.auth_id != auth_id)
                        || flow.status(now_ms()) != Status::PushConfirmationWaiting
                    {
                        return Err(FlowError::NotPending.into());
                    }
                    Ok(Event::OtpDeviceSelected {
                        device: device.clone(),
                        sent: None,
                    })
                })
                .await;
            if let Err(error) = result {
                tracing::debug!(%error, "no passcode fallback after the failed push");
            }
        });
    }

    /// Checks a passcode for the flow's current device or for the method being set up.
    /// A wrong one counts against the limit; the last wrong one fails the authentication.
    pub(crate) async fn check_code(
        &self,
        flow_id: &FlowId,
        current: (Flow, u64),
        presented: &str,
    ) -> Result<Flow, AdapterError> {
        let (flow, _) = &current;
        let policy = self.policy_for(flow);
        let presented = presented.trim().to_owned();
        if presented.is_empty()
            || presented.len() > 10
            || !presented.bytes().all(|b| b.is_ascii_digit())
        {
            return Err(FlowError::InvalidOtp(
                policy.otp_max_attempts.saturating_sub(flow.otp_failures),
            )
            .into());
        }
        self.count_attempt(&flow.user_id, policy).await?;
        if let FlowState::ActivationRequired { .. } = &flow.state {
            return self.activate(flow_id, current, &presented, policy).await;
        }
        let device_id = flow
            .selected_device()
            .cloned()
            .ok_or(FlowError::NotAllowed {
                action: "checkOtp",
                status: flow.status(now_ms()).as_str(),
            })?;
        let device = flow
            .devices
            .iter()
            .find(|known| known.id == device_id)
            .cloned()
            .ok_or(FlowError::UnknownDevice)?;
        // A computed code (authenticator app, the mobile app's seed) is checked here,
        // and its time step spent so that it works once; a sent code is checked against
        // the flow inside the compare-and-set, which spends it.
        let computed = match device.method {
            Method::Totp => {
                let secret = otp_device::list(self.store(), &flow.user_id)
                    .await?
                    .into_iter()
                    .find(|known| known.id == device_id)
                    .and_then(|known| known.totp_secret)
                    .map(|stored| crate::sealing::open(self.data_key(), &stored))
                    .transpose()?;
                Some(
                    self.spend_totp(&device_id, secret.as_deref(), &presented)
                        .await?,
                )
            }
            Method::PingidMobile => {
                let seed = device::find(self.store(), &device_id)
                    .await?
                    .filter(|found| found.serves(&flow.user_id))
                    .and_then(|found| found.otp_seed)
                    .map(|stored| crate::sealing::open(self.data_key(), &stored))
                    .transpose()?;
                Some(
                    self.spend_totp(&device_id, seed.as_deref(), &presented)
                        .await?,
                )
            }
            _ => None,
        };
        let method = device.method.approval_name();
        // A new device's pairing key is issued only for a code that checks out now; the
        // compare-and-set below checks it again, and the key is withdrawn if it loses.
        let likely = computed.unwrap_or_else(|| match &flow.state {
            FlowState::OtpRequired {
                sent: Some(sent), ..
            } => sent.accepts(&presented, now_ms()),
            _ => false,
        });
        let pairing = if flow.kind == FlowKind::NewDevice && likely {
            Some(self.new_device_key(flow).await?)
        } else {
            None
        };
        let now = now_ms();
        let max_attempts = policy.otp_max_attempts;
        let stepped = self
            .step_flow(flow_id, Some(current), |flow| {
                let passed = computed.unwrap_or_else(|| match &flow.state {
                    FlowState::OtpRequired {
                        device,
                        sent: Some(sent),
                    } if *device == device_id => sent.accepts(&presented, now),
                    _ => false,
                });
                let event = if passed {
                    Event::OtpPassed {
                        device: device_id.clone(),
                        method,
                        pairing: pairing.clone(),
                    }
                } else {
                    Event::OtpWrong { max_attempts }
                };
                Ok((apply(flow, event, now)?, passed))
            })
            .await;
        let unused_key = match &stepped {
            Ok((_, true)) => None,
            _ => pairing.as_ref().map(|(key, _)| key.clone()),
        };
        if let Some(key) = unused_key {
            crate::pairing::withdraw(self.store(), &key).await?;
        }
        let (flow, passed) = stepped?;
        wrong_code_outcome(flow, passed, max_attempts)
    }

    /// Checks a computed code and spends its time step; `false` when wrong.
    async fn spend_totp(
        &self,
        device: &DeviceId,
        secret: Option<&str>,
        presented: &str,
    ) -> Result<bool, AdapterError> {
        let Some(secret) = secret else {
            return Ok(false);
        };
        let Some(step) = otp::totp_step(secret, presented, device::unix_now()) else {
            return Ok(false);
        };
        if !otp_device::spend_totp_step(self.store(), device, step).await? {
            return Err(FlowError::OtpReplayed.into());
        }
        Ok(true)
    }

    /// `activate*Device {otp}`: the code proves the new method works; it is saved, and
    /// the flow moves on (to the next missing method, or done).
    async fn activate(
        &self,
        flow_id: &FlowId,
        current: (Flow, u64),
        presented: &str,
        policy: &MfaPolicy,
    ) -> Result<Flow, AdapterError> {
        let (flow, _) = &current;
        let FlowState::ActivationRequired {
            method,
            address,
            sent,
            totp_secret,
        } = flow.state.clone()
        else {
            return Err(AdapterError::internal("not activating"));
        };
        let new_id = DeviceId::generate();
        let passed = match (&sent, &totp_secret) {
            (Some(sent), _) => sent.accepts(presented, now_ms()),
            (None, Some(secret)) => self.spend_totp(&new_id, Some(secret), presented).await?,
            (None, None) => false,
        };
        let max_attempts = policy.otp_max_attempts;
        if !passed {
            let flow = self
                .update_flow(flow_id, Some(current), |_| {
                    Ok(Event::OtpWrong { max_attempts })
                })
                .await?;
            return wrong_code_outcome(flow, false, max_attempts);
        }
        let saved = otp_device::add(
            self.store(),
            &flow.user_id,
            OtpDevice {
                id: new_id.clone(),
                method,
                address,
                totp_secret: totp_secret
                    .as_deref()
                    .map(|secret| crate::sealing::seal(self.data_key(), secret))
                    .transpose()?,
                paired_at: device::unix_now(),
            },
        )
        .await?;
        let summary = otp_summary(&saved);
        let expected_sent = sent.map(|sent| sent.code_sha256);
        let user = flow.user_id.clone();
        let result = self
            .update_flow(flow_id, Some(current), |flow| {
                // The code checked must still be the flow's (no resend in between).
                let same = match &flow.state {
                    FlowState::ActivationRequired { sent, .. } => {
                        sent.as_ref().map(|sent| &sent.code_sha256) == expected_sent.as_ref()
                    }
                    _ => false,
                };
                if !same {
                    return Err(FlowError::NotPending.into());
                }
                Ok(Event::Activated {
                    device: summary.clone(),
                })
            })
            .await;
        // The flow moved on meanwhile: the device does not stand, unless it was there
        // before (the same address set up by a concurrent activation that won).
        if result.is_err() && saved.id == new_id {
            otp_device::remove(self.store(), &user, &saved.id).await?;
        }
        result
    }

    /// `resend` (and the widget's `resendOtp`, and picking the same device again): a new
    /// code, within the number of sends and the interval policy allows.
    pub(crate) async fn resend_code(
        &self,
        flow_id: &FlowId,
        current: (Flow, u64),
    ) -> Result<Flow, AdapterError> {
        let (flow, _) = &current;
        let policy = self.policy_for(flow);
        let (method, address, previous) = match &flow.state {
            FlowState::OtpRequired {
                device,
                sent: Some(sent),
            } => {
                let known = flow
                    .devices
                    .iter()
                    .find(|known| known.id == *device)
                    .ok_or(FlowError::UnknownDevice)?;
                (known.method, known.address.clone(), sent.clone())
            }
            FlowState::ActivationRequired {
                method,
                address,
                sent: Some(sent),
                ..
            } => (*method, address.clone(), sent.clone()),
            _ => {
                return Err(FlowError::NotAllowed {
                    action: "resend",
                    status: flow.status(now_ms()).as_str(),
                }
                .into());
            }
        };
        check_send_allowed(flow, policy)?;
        let wait_ms = (previous.last_sent_ms + policy.otp_resend_interval_secs * 1000)
            .saturating_sub(now_ms());
        if wait_ms > 0 {
            return Err(FlowError::Throttled(format!(
                "wait {} s before asking for another passcode",
                wait_ms.div_ceil(1000)
            ))
            .into());
        }
        let address = address.ok_or(FlowError::UnknownDevice)?;
        self.count_send(&flow.user_id, &address, policy).await?;
        let (sent, outbound) = self.new_code(flow, method, &address, policy, previous.sends + 1)?;
        let expected = previous.code_sha256.clone();
        let flow = self
            .update_flow(flow_id, Some(current), |flow| {
                let unchanged = match &flow.state {
                    FlowState::OtpRequired { sent: Some(s), .. }
                    | FlowState::ActivationRequired { sent: Some(s), .. } => {
                        s.code_sha256 == expected
                    }
                    _ => false,
                };
                if !unchanged {
                    return Err(AdapterError::Conflict(
                        "another passcode was sent meanwhile".to_owned(),
                    ));
                }
                Ok(Event::CodeResent { sent: sent.clone() })
            })
            .await?;
        self.send_outbound(Some(outbound)).await;
        Ok(flow)
    }

    /// `selectDevicePairingMethod`: a new authenticator secret, a pairing key for the
    /// app, or on to asking for the address.
    pub(crate) async fn choose_pairing_method(
        &self,
        flow_id: &FlowId,
        current: (Flow, u64),
        device_type: &str,
    ) -> Result<Flow, AdapterError> {
        let method = Method::parse(device_type).ok_or(FlowError::MethodNotOffered)?;
        let (flow, _) = &current;
        let offered = flow
            .enrolment
            .as_ref()
            .is_some_and(|enrolment| enrolment.missing.contains(&method));
        if !offered {
            return Err(FlowError::MethodNotOffered.into());
        }
        let totp_secret = (method == Method::Totp).then(otp::new_totp_secret);
        let pairing = if method == Method::PingidMobile {
            Some(self.new_device_key(flow).await?)
        } else {
            None
        };
        let result = self
            .update_flow(flow_id, Some(current), |_| {
                Ok(Event::PairingMethodChosen {
                    method,
                    totp_secret: totp_secret.clone(),
                    pairing: pairing.clone(),
                })
            })
            .await;
        if let (Err(_), Some((key, _))) = (&result, &pairing) {
            crate::pairing::withdraw(self.store(), key).await?;
        }
        result
    }

    /// `submitSmsTarget` / `submitVoiceTarget` / `submitEmailTarget`: a code goes to the
    /// address, which is saved only once the code comes back.
    pub(crate) async fn submit_target(
        &self,
        flow_id: &FlowId,
        current: (Flow, u64),
        method: Method,
        address: &str,
    ) -> Result<Flow, AdapterError> {
        let (flow, _) = &current;
        let expected = match &flow.state {
            FlowState::PairingTargetRequired { method } => *method,
            _ => {
                return Err(FlowError::NotAllowed {
                    action: "submitTarget",
                    status: flow.status(now_ms()).as_str(),
                }
                .into());
            }
        };
        if expected != method {
            return Err(FlowError::NotAllowed {
                action: "submitTarget",
                status: flow.status(now_ms()).as_str(),
            }
            .into());
        }
        let address = normalise_address(method, address)?;
        let policy = self.policy_for(flow);
        check_send_allowed(flow, policy)?;
        self.count_send(&flow.user_id, &address, policy).await?;
        let (sent, outbound) = self.new_code(flow, method, &address, policy, 1)?;
        let flow = self
            .update_flow(flow_id, Some(current), |_| {
                Ok(Event::TargetSubmitted {
                    address: address.clone(),
                    sent: sent.clone(),
                })
            })
            .await?;
        self.send_outbound(Some(outbound)).await;
        Ok(flow)
    }

    /// Remembers a completed MFA from this address (and client device), for the skip
    /// window.
    pub(crate) async fn remember_mfa(&self, flow: &Flow) -> Result<(), AdapterError> {
        let policy = self.policy_for(flow);
        let Some(origin) = recent_origin(policy, flow) else {
            return Ok(());
        };
        let ttl = Duration::from_secs(policy.skip_mfa_within_secs);
        self.store()
            .put(
                &keys::recent_mfa(&flow.user_id, &origin),
                b"",
                Ttl::Set(ttl),
            )
            .await?;
        Ok(())
    }
}

/// The policy choices a flow's state machine reads, fixed at its start.
pub(crate) fn flow_policy(policy: &MfaPolicy, kind: FlowKind) -> super::FlowPolicy {
    // A transaction is approved by the device's signature over what it shows: never by a
    // passcode, which signs nothing.
    let signed_only = kind == FlowKind::Transaction;
    super::FlowPolicy {
        use_code: policy.use_code && !signed_only,
        otp_fallback: policy.otp_fallback && !signed_only,
        number_matching: policy.number_matching,
        admin_message: policy.admin_message.clone(),
        otp_length: policy.otp_length,
    }
}

/// Refuses a further passcode once the flow sent as many as policy allows, whichever
/// devices or addresses they went to.
fn check_send_allowed(flow: &Flow, policy: &MfaPolicy) -> Result<(), AdapterError> {
    if flow.codes_sent >= policy.otp_max_sends {
        return Err(FlowError::Throttled(format!(
            "no more than {} passcodes per sign-in",
            policy.otp_max_sends
        ))
        .into());
    }
    Ok(())
}

/// The outcome of a checked code: the flow when right or locked out, else the error with
/// the tries left.
fn wrong_code_outcome(flow: Flow, passed: bool, max_attempts: u32) -> Result<Flow, AdapterError> {
    if passed || flow.status(now_ms()) == Status::MfaFailed {
        return Ok(flow);
    }
    Err(FlowError::InvalidOtp(max_attempts.saturating_sub(flow.otp_failures)).into())
}

/// The hash naming where a sign-in came from (address and client device), when the skip
/// window applies.
fn recent_origin(policy: &MfaPolicy, flow: &Flow) -> Option<String> {
    if policy.skip_mfa_within_secs == 0 || flow.kind != FlowKind::Oob {
        return None;
    }
    // The same browser (the federation server's device cookie), from the same address,
    // for the same application (whose policy set the window): an address alone may be a
    // whole carrier's NAT.
    let ip = flow.client_ip.as_deref()?;
    let client_device = flow.client_device.as_deref()?;
    let application = flow.application.id.as_deref().unwrap_or_default();
    let origin = format!("{ip}\u{0}{client_device}\u{0}{application}");
    Some(hex::encode(Sha256::digest(origin.as_bytes())))
}

/// A number to show and three to pick from (the number and two others), shuffled.
fn number_match() -> (u8, Vec<u8>) {
    let mut rng = rand::rng();
    let number = rng.random_range(10..100u8);
    let mut choices = vec![number];
    while choices.len() < 3 {
        let other = rng.random_range(10..100u8);
        if !choices.contains(&other) {
            choices.push(other);
        }
    }
    choices.shuffle(&mut rng);
    (number, choices)
}

/// A passcode device as flows show it.
pub(crate) fn otp_summary(device: &OtpDevice) -> DeviceSummary {
    let (kind, name) = match device.method {
        Method::Sms => ("SMS", "Text message"),
        Method::Voice => ("Voice", "Voice call"),
        Method::Email => ("Email", "Email"),
        _ => ("TOTP", "Authenticator app"),
    };
    DeviceSummary {
        id: device.id.clone(),
        kind: kind.to_owned(),
        name: name.to_owned(),
        nickname: None,
        target: device
            .address
            .as_deref()
            .map_or_else(|| name.to_owned(), crate::notify::mask_recipient),
        default: false,
        method: device.method,
        otp_enabled: true,
        push_enabled: false,
        address: device.address.clone(),
        unusable: None,
        backup: false,
    }
}

/// What a flow offers: the allowed mobile devices (those too old marked unusable), the
/// allowed passcode devices, and the backups policy enables for the profile's addresses.
fn offered_devices(
    policy: &MfaPolicy,
    profile: &UserProfile,
    mobile: &[Device],
    default: Option<&DeviceId>,
    otp_devices: &[OtpDevice],
) -> Vec<DeviceSummary> {
    let mut offered = Vec::new();
    if policy.allows(Method::PingidMobile) {
        for (device, mut summary) in mobile.iter().zip(summaries(mobile, default)) {
            summary.unusable = policy.os_refusal(&device.os, &device.os_version);
            offered.push(summary);
        }
    }
    offered.extend(
        otp_devices
            .iter()
            .filter(|device| policy.allows(device.method))
            .map(otp_summary),
    );
    let backups = [
        (policy.sms_backup, Method::Sms, profile.phone.as_ref()),
        (policy.phone_backup, Method::Voice, profile.voice.as_ref()),
        (policy.email_backup, Method::Email, profile.email.as_ref()),
    ];
    for (enabled, method, address) in backups {
        let Some(address) = address.filter(|_| enabled) else {
            continue;
        };
        // An enrolled device with the same address already offers it.
        if offered
            .iter()
            .any(|known| known.method == method && known.address.as_ref() == Some(address))
        {
            continue;
        }
        let mut backup = otp_summary(&OtpDevice {
            id: DeviceId::generate(),
            method,
            address: Some(address.clone()),
            totp_secret: None,
            paired_at: 0,
        });
        backup.backup = true;
        backup.name = format!("Backup: {}", backup.name.to_lowercase());
        offered.push(backup);
    }
    offered
}

/// Checks and normalises a phone number (E.164) or an email address.
fn normalise_address(method: Method, raw: &str) -> Result<String, AdapterError> {
    let raw = raw.trim();
    if method == Method::Email {
        let valid = raw.len() <= MAX_EMAIL_LEN
            && raw.split_once('@').is_some_and(|(local, domain)| {
                !local.is_empty() && domain.contains('.') && !domain.starts_with('.')
            })
            && !raw
                .chars()
                .any(|c| c.is_whitespace() || c.is_control() || c == '<' || c == '>');
        return if valid {
            Ok(raw.to_owned())
        } else {
            Err(AdapterError::Invalid(
                "`email` is not an email address".to_owned(),
            ))
        };
    }
    // People type spaces, dashes and brackets; E.164 is + and 8 to 15 digits.
    let compact: String = raw
        .chars()
        .filter(|c| !matches!(c, ' ' | '-' | '(' | ')' | '.'))
        .collect();
    let digits = compact.strip_prefix('+').unwrap_or("");
    if compact.len() > MAX_PHONE_LEN
        || !(8..=15).contains(&digits.len())
        || !digits.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(AdapterError::Invalid(
            "`phone` must be an international number: + and 8 to 15 digits".to_owned(),
        ));
    }
    Ok(compact)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_checked_and_normalised() {
        assert_eq!(
            normalise_address(Method::Sms, "+1 (555) 555-0101").unwrap(),
            "+15555550101"
        );
        assert!(normalise_address(Method::Sms, "5555550101").is_err());
        assert!(normalise_address(Method::Voice, "+1555abc0101").is_err());
        assert!(normalise_address(Method::Email, "a@example.com").is_ok());
        assert!(normalise_address(Method::Email, "a@b").is_err());
        assert!(normalise_address(Method::Email, "a b@example.com").is_err());
    }

    #[test]
    fn number_matching_offers_the_number_among_three() {
        for _ in 0..50 {
            let (number, choices) = number_match();
            assert_eq!(choices.len(), 3);
            assert!(choices.contains(&number));
            assert!(choices.iter().all(|n| (10..100).contains(n)));
            assert_ne!(choices[0], choices[1]);
            assert_ne!(choices[1], choices[2]);
            assert_ne!(choices[0], choices[2]);
        }
    }
}
