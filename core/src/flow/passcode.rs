//! Passcodes in a flow: sending one (within the flow's and the user's limits), checking
//! one (sent codes inside the compare-and-set that spends them, computed codes by their
//! time step), and resending.

use super::mfa::Outbound;
use super::service::now_ms;
use super::{Event, Flow, FlowKind, FlowState, Method, Status, apply};
use crate::Adapter;
use crate::device;
use crate::error::{AdapterError, FlowError};
use crate::ids::{DeviceId, FlowId};
use crate::notify::{Channel, Message};
use crate::otp::{self, SentCode};
use crate::otp_device;
use crate::policy::MfaPolicy;

impl Adapter {
    /// A fresh code for `address`, remembered hashed, and the message carrying it.
    pub(super) fn new_code(
        &self,
        flow: &Flow,
        method: Method,
        address: &str,
        policy: &MfaPolicy,
        sends: u32,
    ) -> Result<(SentCode, Outbound), AdapterError> {
        let code = otp::random_code(policy.otp_length);
        let now = now_ms();
        let sent = SentCode::new(
            &code,
            now,
            policy.otp_ttl_secs * 1000,
            sends,
            self.data_key(),
        );
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
            } => sent.accepts(&presented, now_ms(), self.data_key()),
            _ => false,
        });
        let pairing = if flow.kind == FlowKind::NewDevice && likely {
            Some(self.new_device_key(flow).await?)
        } else {
            None
        };
        let now = now_ms();
        let max_attempts = policy.otp_max_attempts;
        let data_key = self.data_key();
        let stepped = self
            .step_flow(flow_id, Some(current), |flow| {
                let passed = computed.unwrap_or_else(|| match &flow.state {
                    FlowState::OtpRequired {
                        device,
                        sent: Some(sent),
                    } if *device == device_id => sent.accepts(&presented, now, data_key),
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
    pub(super) async fn spend_totp(
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
}

/// Refuses a further passcode once the flow sent as many as policy allows, whichever
/// devices or addresses they went to.
pub(super) fn check_send_allowed(flow: &Flow, policy: &MfaPolicy) -> Result<(), AdapterError> {
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
pub(super) fn wrong_code_outcome(
    flow: Flow,
    passed: bool,
    max_attempts: u32,
) -> Result<Flow, AdapterError> {
    if passed || flow.status(now_ms()) == Status::MfaFailed {
        return Ok(flow);
    }
    Err(FlowError::InvalidOtp(max_attempts.saturating_sub(flow.otp_failures)).into())
}
