//! Passcodes in a flow: sending one (within the flow's and the user's limits), checking
//! one (sent codes inside the compare-and-set that spends them, computed codes by their
//! time step), and resending.

use super::engine::Versioned;
use super::{Event, Flow, FlowKind, Head, Method, Status, View};
use crate::Adapter;
use crate::device;
use crate::error::{AdapterError, FlowError};
use crate::ids::{DeviceId, FlowId};
use crate::notify::{Channel, Message};
use crate::otp::{self, SentCode};
use crate::otp_device;
use crate::policy::MfaPolicy;

/// What a passcode message carries for the sender besides its text.
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct CodeData<'a> {
    flow_id: &'a str,
}

impl Adapter {
    /// A fresh code for `address`, remembered hashed, and the message carrying it.
    pub(super) fn new_code(
        &self,
        flow: &Head,
        method: Method,
        address: &str,
        policy: &MfaPolicy,
        sends: u32,
    ) -> Result<(SentCode, Message), AdapterError> {
        let code = otp::random_code(policy.otp_length);
        let now = self.clock().now_ms();
        let sent = SentCode::new(
            &code,
            now,
            policy.otp_ttl_secs * 1000,
            sends,
            self.data_key(),
        );
        let minutes = policy.otp_ttl_secs.div_ceil(60).to_string();
        let application = flow.application.name.as_str();
        let texts = self.texts(flow.language.as_deref());
        let args = [
            ("code", code.as_str()),
            ("app", application),
            ("minutes", minutes.as_str()),
        ];
        let (channel, text) = match method {
            Method::Sms => (Channel::Sms, texts.text("sms-code", &args)?),
            Method::Voice => {
                let spoken: Vec<String> = code.chars().map(String::from).collect();
                let digits = spoken.join(", ");
                let args = [("app", application), ("digits", digits.as_str())];
                (Channel::Voice, texts.text("voice-code", &args)?)
            }
            Method::Email => (Channel::Email, texts.text("email-code", &args)?),
            Method::PingidMobile
            | Method::Totp
            | Method::Yubikey
            | Method::OathToken
            | Method::SecurityKey
            | Method::Platform => {
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
            subject: texts.text("email-subject", &[("app", application)])?,
            text,
            data: super::mfa::push_data(&CodeData {
                flow_id: flow.id.as_str(),
            }),
        };
        Ok((sent, message))
    }

    /// Checks a passcode for the flow's current device or for the method being set up.
    /// A wrong one counts against the limit; the last wrong one fails the authentication.
    pub(crate) async fn check_code(
        &self,
        flow_id: &FlowId,
        current: Versioned,
        presented: &str,
    ) -> Result<Flow, AdapterError> {
        let (flow, _) = &current;
        let policy = self.policy_for(flow);
        let presented = presented.trim().to_owned();
        let digits = !presented.is_empty()
            && presented.len() <= 10
            && presented.bytes().all(|b| b.is_ascii_digit());
        if !digits && !crate::yubikey::looks_like_otp(&presented) {
            return Err(FlowError::InvalidOtp(
                policy.otp_max_attempts.saturating_sub(flow.otp_failures),
            )
            .into());
        }
        self.count_attempt(&flow.user_id, policy).await?;
        if let View::Activation { .. } = flow.view() {
            return self.activate(flow_id, current, &presented).await;
        }
        let device_id = flow
            .selected_device()
            .cloned()
            .ok_or(FlowError::NotAllowed {
                action: "checkOtp",
                status: flow.status(self.clock().now_ms()).as_str(),
            })?;
        let device = flow
            .devices
            .iter()
            .find(|known| known.id == device_id)
            .cloned()
            .ok_or(FlowError::UnknownDevice)?;
        // A computed code (authenticator app, the mobile app's seed) is checked here,
        // and its time step spent so that it works once; a sent code is checked against
        // the very flow version the commit replaces, which spends it.
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
            Method::Yubikey | Method::OathToken => {
                let token = otp_device::list(self.store(), &flow.user_id)
                    .await?
                    .into_iter()
                    .find(|known| known.id == device_id);
                Some(match token {
                    Some(token) if token.method == Method::Yubikey => {
                        self.check_yubikey(&token, &presented).await?
                    }
                    Some(token) => self.check_oath(&token, &presented).await?,
                    None => false,
                })
            }
            _ => None,
        };
        // A new device admitted by the right code may pair with this key; it is written
        // only by the transition that admits it.
        let pairing = (flow.kind() == FlowKind::NewDevice)
            .then(|| self.pairing_offer(flow, self.clock().now_ms()));
        let data_key = self.data_key();
        let (flow, passed) = self
            .update_flow_with(flow_id, Some(current), |flow| {
                let passed = computed.unwrap_or_else(|| match flow.view() {
                    View::Otp {
                        device,
                        sent: Some(sent),
                    } if *device == device_id => {
                        sent.accepts(&presented, self.clock().now_ms(), data_key)
                    }
                    _ => false,
                });
                let event = Event::OtpChecked {
                    device: device_id.clone(),
                    passed,
                    pairing: pairing.clone(),
                };
                Ok((event, passed))
            })
            .await?;
        wrong_code_outcome(flow, passed, policy.otp_max_attempts, self.clock().now_ms())
    }

    /// Checks a computed code and spends its time step; `false` when wrong.
    pub(super) async fn spend_totp(
        &self,
        device: &DeviceId,
        secret: Option<&str>,
        presented: &str,
    ) -> Result<bool, AdapterError> {
        let Some(secret) = secret else {
            return Ok(false);
        };
        let Some(step) = otp::totp_step(secret, presented, self.clock().now_secs()) else {
            return Ok(false);
        };
        if !otp_device::spend_totp_step(self.store(), device, step).await? {
            return Err(FlowError::OtpReplayed.into());
        }
        Ok(true)
    }

    /// `resend` (and the widget's `resendOtp`, and picking the same device again): a new
    /// code, within the number of sends and the interval policy allows.
    pub(crate) async fn resend_code(
        &self,
        flow_id: &FlowId,
        current: Versioned,
    ) -> Result<Flow, AdapterError> {
        let (flow, _) = &current;
        let policy = self.policy_for(flow);
        let (method, address, previous) = match flow.view() {
            View::Otp {
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
            View::Activation {
                method,
                address,
                sent: Some(sent),
                ..
            } => (method, address.map(str::to_owned), sent.clone()),
            _ => {
                return Err(FlowError::NotAllowed {
                    action: "resend",
                    status: flow.status(self.clock().now_ms()).as_str(),
                }
                .into());
            }
        };
        check_send_allowed(flow, policy)?;
        let wait_ms = (previous.last_sent_ms + policy.otp_resend_interval_secs * 1000)
            .saturating_sub(self.clock().now_ms());
        if wait_ms > 0 {
            return Err(FlowError::Throttled(format!(
                "wait {} s before asking for another passcode",
                wait_ms.div_ceil(1000)
            ))
            .into());
        }
        let address = address.ok_or(FlowError::UnknownDevice)?;
        self.count_send(&flow.user_id, &address, policy).await?;
        let (sent, message) = self.new_code(flow, method, &address, policy, previous.sends + 1)?;
        let expected = previous.code_sha256.clone();
        self.update_flow(flow_id, Some(current), |flow| {
            let unchanged = match flow.view() {
                View::Otp { sent: Some(s), .. } | View::Activation { sent: Some(s), .. } => {
                    s.code_sha256 == expected
                }
                _ => false,
            };
            if !unchanged {
                return Err(AdapterError::Conflict(
                    "another passcode was sent meanwhile".to_owned(),
                ));
            }
            Ok(Event::CodeResent {
                sent: sent.clone(),
                message: message.clone(),
            })
        })
        .await
    }
}

/// Refuses a further passcode once the flow sent as many as policy allows, whichever
/// devices or addresses they went to.
pub(super) fn check_send_allowed(flow: &Head, policy: &MfaPolicy) -> Result<(), AdapterError> {
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
/// the tries left, as seen at `now_ms`.
pub(super) fn wrong_code_outcome(
    flow: Flow,
    passed: bool,
    max_attempts: u32,
    now_ms: u64,
) -> Result<Flow, AdapterError> {
    if passed || flow.status(now_ms) == Status::MfaFailed {
        return Ok(flow);
    }
    Err(FlowError::InvalidOtp(max_attempts.saturating_sub(flow.otp_failures)).into())
}
