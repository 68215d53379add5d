//! WebAuthn in a flow: setting up a security key or a platform authenticator (the
//! ceremony's options shown, its attestation checked against the very challenge the flow
//! holds), and the credential saved as a device of the user. Each challenge answers once:
//! the answer's commit replaces the flow version that held it, and a refused answer comes
//! back with a new challenge.

use std::sync::Arc;

use super::engine::Versioned;
use super::machine::{AssertionVerdict, WebauthnSetup, WebauthnSignIn};
use super::{Event, Flow, FlowState, Head, Method, Status, oob};
use crate::Adapter;
use crate::error::{AdapterError, FlowError};
use crate::ids::{DeviceId, FlowId};
use crate::otp_device::{self, OtpDevice};
use crate::user::UserId;
use crate::webauthn_authentication::{self, AssertionError};
use crate::webauthn_credential;
use crate::webauthn_registration::{self, RegistrationError, WebauthnKey};

impl Adapter {
    /// A set-up ceremony for `method` for the flow's user: the options for the browser and
    /// the state to keep. The user's credentials are excluded, so that one authenticator
    /// is not set up twice.
    pub(super) async fn webauthn_setup(
        &self,
        flow: &Flow,
        method: Method,
    ) -> Result<WebauthnSetup, AdapterError> {
        let relying_party = self.relying_party()?;
        let existing = otp_device::list(self.store(), &flow.user_id)
            .await?
            .into_iter()
            .filter_map(|device| device.webauthn.map(|key| key.credential_id))
            .collect();
        let name = self
            .find_user(&flow.user_id)
            .await?
            .map_or_else(|| flow.user_id.to_string(), |user| user.username);
        let expires_at_ms = self.clock().now_ms() + self.challenge_ttl_ms();
        let (options, pending) = webauthn_registration::start(
            relying_party,
            self.attestation_roots(),
            method,
            flow.user_id.as_str(),
            &name,
            existing,
            expires_at_ms,
        )
        .map_err(AdapterError::internal)?;
        Ok(WebauthnSetup { options, pending })
    }

    /// How long a WebAuthn challenge may be answered.
    pub(super) fn challenge_ttl_ms(&self) -> u64 {
        self.config()
            .webauthn
            .as_ref()
            .map_or(0, |webauthn| webauthn.challenge_ttl_secs * 1000)
    }

    /// `activateSecurityKeyDevice` / `activatePlatformDevice {attestation, origin}`: the
    /// new credential, verified against the flow's challenge, is saved once the flow moves
    /// on; a refused one leaves a new challenge and counts as a wrong try.
    pub(super) async fn activate_webauthn(
        &self,
        flow_id: &FlowId,
        current: Versioned,
        attestation: &str,
        origin: &str,
    ) -> Result<Flow, AdapterError> {
        let (flow, _) = &current;
        let FlowState::Oob(oob::State::WebauthnActivationRequired { method, setup }) = flow.state()
        else {
            return Err(AdapterError::internal("not setting up a WebAuthn device"));
        };
        let (method, pending) = (*method, setup.pending.clone());
        let verdict = self
            .verify_attestation(method, &pending, attestation, origin)
            .await?;
        let (device, retry, refusal) = match verdict {
            Ok(key) => {
                let device = OtpDevice {
                    id: DeviceId::generate(),
                    method,
                    address: None,
                    totp_secret: None,
                    yubikey: None,
                    oath: None,
                    webauthn: Some(key),
                    paired_at: self.clock().now_secs(),
                };
                (Some(device), None, None)
            }
            Err(reason) => {
                let retry = self.webauthn_setup(flow, method).await?;
                (None, Some(Box::new(retry)), Some(reason))
            }
        };
        let flow = self
            .update_flow(flow_id, Some(current), |flow| {
                // The answer was checked against this challenge: a flow that moved on
                // (answered meanwhile, or given a new challenge) does not take it.
                let same = matches!(
                    flow.state(),
                    FlowState::Oob(oob::State::WebauthnActivationRequired { setup, .. })
                        if setup.pending == pending
                );
                if !same {
                    return Err(FlowError::NotPending.into());
                }
                Ok(Event::WebauthnActivationChecked {
                    device: device.clone(),
                    retry: retry.clone(),
                })
            })
            .await?;
        self.answered(flow, "attestation", refusal)
    }

    /// Checks an attestation: the page's origin, the ceremony, the authenticator model,
    /// and that the credential is nobody's yet. `Err` carries why it was refused.
    async fn verify_attestation(
        &self,
        method: Method,
        pending: &webauthn_registration::PendingRegistration,
        attestation: &str,
        origin: &str,
    ) -> Result<Result<WebauthnKey, &'static str>, AdapterError> {
        let Some(config) = self.config().webauthn.as_ref() else {
            return Err(AdapterError::internal("no [webauthn] relying party"));
        };
        if pending.method != method {
            return Err(AdapterError::internal("the ceremony is for another method"));
        }
        if !config.origins.iter().any(|allowed| allowed == origin) {
            return Ok(Err("the page's origin is not one of the relying party's"));
        }
        let now = self.clock().now_ms();
        let (relying_party, ceremony) = (Arc::clone(self.relying_party()?), pending.clone());
        let attestation = attestation.to_owned();
        let verified = crate::webauthn::verify_apart(move || {
            webauthn_registration::finish(&relying_party, &ceremony, &attestation, now)
        })
        .await?;
        let key = match verified {
            Ok(key) => key,
            Err(RegistrationError::State | RegistrationError::NotWebauthn(_)) => {
                return Err(AdapterError::internal(
                    "the WebAuthn ceremony state is unreadable",
                ));
            }
            Err(error) => return Ok(Err(refusal(&error))),
        };
        // `webauthn-rs` checked the model against the trusted roots' list; a ceremony
        // started before the policy was turned on carries no list, and its answer would
        // only claim a model.
        if !config.allowed_aaguids.is_empty()
            && !key
                .aaguid
                .is_some_and(|aaguid| config.allowed_aaguids.contains(&aaguid))
        {
            return Ok(Err("this authenticator model is not allowed"));
        }
        if crate::webauthn_credential::owner(self.store(), &key.credential_id)
            .await?
            .is_some()
        {
            return Ok(Err("this authenticator is already set up"));
        }
        Ok(Ok(key))
    }
}

impl Adapter {
    /// The user's stored credential `device`, if it is theirs.
    pub(super) async fn webauthn_key(
        &self,
        user: &UserId,
        device: &DeviceId,
    ) -> Result<WebauthnKey, AdapterError> {
        otp_device::list(self.store(), user)
            .await?
            .into_iter()
            .find(|known| known.id == *device)
            .and_then(|known| known.webauthn)
            .ok_or_else(|| FlowError::UnknownDevice.into())
    }

    /// A sign-in ceremony with the user's credential `device` (refused once disabled).
    pub(super) async fn webauthn_sign_in(
        &self,
        head: &Head,
        device: &DeviceId,
    ) -> Result<WebauthnSignIn, AdapterError> {
        let key = self.webauthn_key(&head.user_id, device).await?;
        if let Some(reason) = key.disabled {
            return Err(FlowError::DeviceRefused(reason).into());
        }
        let expires_at_ms = self.clock().now_ms() + self.challenge_ttl_ms();
        let (options, pending) =
            webauthn_authentication::start(self.relying_party()?, &key, expires_at_ms)
                .map_err(AdapterError::internal)?;
        Ok(WebauthnSignIn { options, pending })
    }

    /// A passwordless sign-in ceremony: no credential named, the person verified.
    pub(super) fn passkey_sign_in(&self) -> Result<WebauthnSignIn, AdapterError> {
        let expires_at_ms = self.clock().now_ms() + self.challenge_ttl_ms();
        let (options, pending) =
            webauthn_authentication::start_discoverable(self.relying_party()?, expires_at_ms)
                .map_err(AdapterError::internal)?;
        Ok(WebauthnSignIn { options, pending })
    }

    /// `checkAssertion {assertion, origin, compatibility}`: the authenticator's signature
    /// over the flow's challenge, from one of the relying party's origins, with a
    /// signature counter past the last one. A refused answer leaves a new challenge and
    /// counts as a wrong try; a counter that did not move shows a clone: the credential is
    /// disabled and the sign-in fails.
    pub(super) async fn check_assertion(
        &self,
        flow_id: &FlowId,
        current: Versioned,
        assertion: &str,
        origin: &str,
    ) -> Result<Flow, AdapterError> {
        let (flow, _) = &current;
        let FlowState::Oob(oob::State::AssertionRequired { device, sign_in }) = flow.state() else {
            return Err(AdapterError::internal("no assertion is expected"));
        };
        let (device, pending) = (device.clone(), sign_in.pending.clone());
        let key = self.webauthn_key(&flow.user_id, &device).await?;
        let verified = self
            .verify_assertion(&flow.user_id, &key, &pending, assertion, origin)
            .await?;
        let (verdict, refusal) = match verified {
            Err(Refusal::CounterBehind) => {
                self.cloned(&flow.id, &flow.user_id, &device, &key).await?;
                (AssertionVerdict::Cloned, None)
            }
            Err(Refusal::Because(reason)) => {
                let retry = self.webauthn_sign_in(flow, &device).await?;
                (AssertionVerdict::Refused(Box::new(retry)), Some(reason))
            }
            Ok(asserted) => {
                if webauthn_credential::counter_accepted(
                    self.store(),
                    &device,
                    &key,
                    asserted.sign_count,
                )
                .await?
                {
                    (AssertionVerdict::Passed, None)
                } else {
                    self.cloned(&flow.id, &flow.user_id, &device, &key).await?;
                    (AssertionVerdict::Cloned, None)
                }
            }
        };
        let flow = self
            .update_flow(flow_id, Some(current), |flow| {
                // Checked against this challenge: a flow that moved on does not take it.
                let same = matches!(
                    flow.state(),
                    FlowState::Oob(oob::State::AssertionRequired { sign_in, .. })
                        if sign_in.pending == pending
                );
                if !same {
                    return Err(FlowError::NotPending.into());
                }
                Ok(Event::AssertionChecked {
                    device: device.clone(),
                    verdict: verdict.clone(),
                })
            })
            .await?;
        self.answered(flow, "assertion", refusal)
    }

    /// The flow after a WebAuthn answer was committed: a refused one (`refusal`) is told
    /// to the browser as an error with the tries left, unless it ended the sign-in.
    pub(super) fn answered(
        &self,
        flow: Flow,
        target: &'static str,
        refusal: Option<&'static str>,
    ) -> Result<Flow, AdapterError> {
        match refusal {
            Some(reason) if flow.status(self.clock().now_ms()) != Status::MfaFailed => {
                let policy = self.policy_for(&flow);
                Err(FlowError::WebauthnRefused {
                    target,
                    reason,
                    left: policy.otp_max_attempts.saturating_sub(flow.otp_failures),
                }
                .into())
            }
            _ => Ok(flow),
        }
    }

    /// Reports and disables `user`'s credential whose signature counter did not move
    /// forward in the flow `flow_id`.
    pub(super) async fn cloned(
        &self,
        flow_id: &FlowId,
        user: &UserId,
        device: &DeviceId,
        key: &WebauthnKey,
    ) -> Result<(), AdapterError> {
        tracing::warn!(
            target: "audit",
            user_id = %user,
            device_id = %device,
            flow_id = %flow_id,
            set_up_count = key.sign_count,
            "a WebAuthn signature counter did not move forward: possibly a cloned \
             authenticator; the credential is disabled"
        );
        let reason = super::steps::CLONED;
        webauthn_credential::disable(self.store(), user, device, key.method, reason).await
    }

    /// Checks an assertion by `user`'s `key`: the page's origin, the credential answering,
    /// and the signature over the challenge. `Err` carries why it was refused.
    pub(super) async fn verify_assertion(
        &self,
        user: &UserId,
        key: &WebauthnKey,
        pending: &webauthn_authentication::PendingAssertion,
        assertion: &str,
        origin: &str,
    ) -> Result<Result<webauthn_authentication::Asserted, Refusal>, AdapterError> {
        let Some(config) = self.config().webauthn.as_ref() else {
            return Err(AdapterError::internal("no [webauthn] relying party"));
        };
        if !config.origins.iter().any(|allowed| allowed == origin) {
            return Ok(Err(Refusal::Because(
                "the page's origin is not one of the relying party's",
            )));
        }
        let now = self.clock().now_ms();
        let user = user.as_str();
        let relying_party = self.relying_party()?;
        let refused = |reason| Ok(Err(Refusal::Because(reason)));
        let (relying_party, ceremony, key) =
            (Arc::clone(relying_party), pending.clone(), key.clone());
        let (user, assertion) = (user.to_owned(), assertion.to_owned());
        let verified = crate::webauthn::verify_apart(move || {
            webauthn_authentication::finish(&relying_party, &ceremony, &key, &user, &assertion, now)
        })
        .await?;
        match verified {
            Ok(asserted) => Ok(Ok(asserted)),
            Err(AssertionError::State | AssertionError::NotWebauthn(_)) => Err(
                AdapterError::internal("the WebAuthn ceremony state is unreadable"),
            ),
            Err(AssertionError::CounterBehind) => Ok(Err(Refusal::CounterBehind)),
            Err(AssertionError::Expired) => refused("the challenge expired"),
            Err(AssertionError::Malformed) => refused("the assertion is malformed"),
            Err(AssertionError::WrongOrigin) => refused("the assertion comes from another origin"),
            Err(AssertionError::UnknownCredential) => {
                refused("another authenticator answered than the one asked")
            }
            Err(AssertionError::Refused) => refused("the authenticator's signature did not verify"),
        }
    }
}

/// Why an assertion was not accepted.
pub(super) enum Refusal {
    /// Its counter shows a clone.
    CounterBehind,
    /// Refused, for this reason.
    Because(&'static str),
}

/// What the person is told when a set-up answer is refused.
fn refusal(error: &RegistrationError) -> &'static str {
    match error {
        RegistrationError::Expired => "the challenge expired",
        RegistrationError::Malformed => "the attestation is malformed",
        RegistrationError::WrongOrigin => "the attestation comes from another origin",
        RegistrationError::Unattested => {
            "the authenticator's maker did not vouch for it (no attestation from a trusted root)"
        }
        RegistrationError::ModelNotAllowed => "this authenticator model is not allowed",
        _ => "the authenticator's answer did not verify",
    }
}
