//! Setting up the methods policy makes mandatory, inside a flow: the method, the address
//! (a code goes to it), and the code that proves it works before the device is saved.

use super::mfa::otp_summary;
use super::passcode::{check_send_allowed, wrong_code_outcome};
use super::service::now_ms;
use super::{Event, Flow, FlowState, Method};
use crate::Adapter;
use crate::device;
use crate::error::{AdapterError, FlowError};
use crate::ids::{DeviceId, FlowId};
use crate::otp;
use crate::otp_device::{self, OtpDevice};
use crate::policy::MfaPolicy;

/// The longest phone number (E.164: 15 digits and the `+`).
const MAX_PHONE_LEN: usize = 16;
/// The longest email address (RFC 5321).
const MAX_EMAIL_LEN: usize = 254;

impl Adapter {
    /// `activate*Device {otp}`: the code proves the new method works; it is saved, and
    /// the flow moves on (to the next missing method, or done).
    pub(super) async fn activate(
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
            (Some(sent), _) => sent.accepts(presented, now_ms(), self.data_key()),
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
}

/// Checks and normalises a phone number (E.164) or an email address.
pub(super) fn normalise_address(method: Method, raw: &str) -> Result<String, AdapterError> {
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
}
