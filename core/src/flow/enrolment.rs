//! Setting up the methods policy makes mandatory, inside a flow: the method, the address
//! (a code goes to it), and the code that proves it works before the device is saved.

use super::engine::Versioned;
use super::passcode::{check_send_allowed, wrong_code_outcome};
use super::{Event, Flow, Method, View};
use crate::Adapter;
use crate::error::{AdapterError, FlowError};
use crate::ids::{DeviceId, FlowId};
use crate::otp;
use crate::otp_device::OtpDevice;

/// The longest phone number (E.164: 15 digits and the `+`).
const MAX_PHONE_LEN: usize = 16;
/// The longest email address (RFC 5321).
const MAX_EMAIL_LEN: usize = 254;

impl Adapter {
    /// `activate*Device {otp}`: the code proves the new method works; the flow moves on
    /// (to the next missing method, or done) and the device is saved once that is stored.
    pub(super) async fn activate(
        &self,
        flow_id: &FlowId,
        current: Versioned,
        presented: &str,
    ) -> Result<Flow, AdapterError> {
        let (flow, _) = &current;
        let View::Activation {
            method,
            address,
            totp_secret,
            ..
        } = flow.view()
        else {
            return Err(AdapterError::internal("not activating"));
        };
        let new_id = DeviceId::generate();
        // An authenticator's code is checked (and its step spent) here; a sent code is
        // checked against the flow version the commit replaces.
        let computed = match totp_secret {
            Some(secret) => Some(self.spend_totp(&new_id, Some(secret), presented).await?),
            None => None,
        };
        let device = OtpDevice {
            id: new_id,
            method,
            address: address.map(str::to_owned),
            totp_secret: totp_secret
                .map(|secret| crate::sealing::seal(self.data_key(), secret))
                .transpose()?,
            yubikey: None,
            oath: None,
            webauthn: None,
            paired_at: self.clock().now_secs(),
        };
        let policy = self.policy_for(flow);
        let data_key = self.data_key();
        let (flow, passed) = self
            .update_flow_with(flow_id, Some(current), |flow| {
                let passed = computed.unwrap_or_else(|| match flow.view() {
                    View::Activation {
                        sent: Some(sent), ..
                    } => sent.accepts(presented, self.clock().now_ms(), data_key),
                    _ => false,
                });
                let event = Event::ActivationChecked {
                    passed,
                    device: device.clone(),
                };
                Ok((event, passed))
            })
            .await?;
        wrong_code_outcome(flow, passed, policy.otp_max_attempts, self.clock().now_ms())
    }

    /// `selectDevicePairingMethod`: a new authenticator secret, a pairing key for the
    /// app (written with the transition that shows it), a WebAuthn ceremony, or on to
    /// asking for the address.
    pub(crate) async fn choose_pairing_method(
        &self,
        flow_id: &FlowId,
        current: Versioned,
        device_type: &str,
    ) -> Result<Flow, AdapterError> {
        let method = Method::parse(device_type).ok_or(FlowError::MethodNotOffered)?;
        let (flow, _) = &current;
        let totp_secret = (method == Method::Totp).then(otp::new_totp_secret);
        let pairing = (method == Method::PingidMobile)
            .then(|| self.pairing_offer(flow, self.clock().now_ms()));
        // Only a method the person is asked to set up starts a ceremony.
        let webauthn = match flow.enrolment.as_ref() {
            Some(enrolment) if method.is_webauthn() && enrolment.missing.contains(&method) => {
                Some(Box::new(Box::pin(self.webauthn_setup(flow, method)).await?))
            }
            _ => None,
        };
        self.update_flow(flow_id, Some(current), |_| {
            Ok(Event::PairingMethodChosen {
                method,
                totp_secret: totp_secret.clone(),
                pairing: pairing.clone(),
                webauthn: webauthn.clone(),
            })
        })
        .await
    }

    /// `submitSmsTarget` / `submitVoiceTarget` / `submitEmailTarget`: a code goes to the
    /// address, which is saved only once the code comes back.
    pub(crate) async fn submit_target(
        &self,
        flow_id: &FlowId,
        current: Versioned,
        method: Method,
        address: &str,
    ) -> Result<Flow, AdapterError> {
        let (flow, _) = &current;
        let address = normalise_address(method, address)?;
        let policy = self.policy_for(flow);
        check_send_allowed(flow, policy)?;
        self.count_send(&flow.user_id, &address, policy).await?;
        let (sent, message) = self.new_code(flow, method, &address, policy, 1)?;
        self.update_flow(flow_id, Some(current), |_| {
            Ok(Event::TargetSubmitted {
                method,
                address: address.clone(),
                sent: sent.clone(),
                message: message.clone(),
            })
        })
        .await
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
