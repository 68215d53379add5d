//! Entering a flow, as PingFederate's MFA adapters do it: a flow opens in
//! `AUTHENTICATION_REQUIRED` and nothing reaches a phone until `authenticate` is posted.
//! A browser posts `authenticate {}` (PingFederate's widget does so by itself): policy is
//! applied then, and the push or the code is an effect of that transition. A native app
//! posts `authenticate {mobilePayload}`: a trusted device's signature over the flow id
//! completes the flow with no interaction; an app not trusted yet, with its new key
//! self-signed, is admitted as a new device is and pairs through `serverPayload`.

use std::time::{Duration, SystemTime};

use sha2::{Digest, Sha256};

use super::engine::Versioned;
use super::machine::{AppArrival, Entry, Event, Transition};
use super::new_device::Admission;
use super::service::summaries;
use super::{
    Approval, ApprovalMethod, DeviceSummary, Flow, FlowKind, FlowState, Head, new_device, oob,
    passwordless, qr, registration, steps, transaction,
};
use crate::config::AdditionalTrustedDevices;
use crate::device_key::{self, CLOCK_SKEW, MOBILE_PAYLOAD_LIFETIME};
use crate::error::AdapterError;
use crate::ids::{DeviceId, FlowId, random_alphanumeric};
use crate::policy::NetworkAction;
use crate::{Adapter, device, keys, user};

/// The state a kind opens in: waiting for `authenticate`.
pub(super) fn opening(head: Head, kind: FlowKind) -> Result<Transition, AdapterError> {
    let state = match kind {
        FlowKind::Oob => FlowState::Oob(oob::State::AuthenticationRequired),
        FlowKind::Transaction => FlowState::Transaction(transaction::State::AuthenticationRequired),
        FlowKind::Registration => {
            FlowState::Registration(registration::State::AuthenticationRequired)
        }
        FlowKind::NewDevice => FlowState::NewDevice(new_device::State::AuthenticationRequired),
        FlowKind::Qr => FlowState::Qr(qr::State::AuthenticationRequired),
        FlowKind::Passwordless => {
            FlowState::Passwordless(passwordless::State::AuthenticationRequired)
        }
        FlowKind::Ciba | FlowKind::DeviceAuthorization => {
            return Err(AdapterError::internal(
                "this kind does not open for a browser",
            ));
        }
    };
    Ok(Transition::to(head.into_flow(state)))
}

/// A trusted device entered: its approval, unless the network refuses.
pub(super) fn app_authorized(
    device: &DeviceSummary,
    network: Option<NetworkAction>,
    now_ms: u64,
) -> Result<Approval, String> {
    if let Some(reason) = steps::network_denial(network) {
        return Err(reason);
    }
    Ok(Approval {
        device_id: device.id.clone(),
        method: ApprovalMethod::DeviceAuthorization,
        decided_at_ms: now_ms,
    })
}

/// How long a spent mobile payload `jti` is remembered: as long as its payload would
/// still be accepted, with the clock skew on both sides.
fn jti_ttl() -> Duration {
    MOBILE_PAYLOAD_LIFETIME + CLOCK_SKEW + CLOCK_SKEW
}

fn refused(reason: impl Into<String>) -> AdapterError {
    AdapterError::Invalid(reason.into())
}

impl Adapter {
    /// `authenticate` on a flow in `AUTHENTICATION_REQUIRED`: a browser's (`{}`), or a
    /// native app's (`{mobilePayload}`). A refused payload leaves the flow as it was.
    pub(crate) async fn enter(
        &self,
        id: &FlowId,
        current: Versioned,
        mobile_payload: Option<&str>,
    ) -> Result<Flow, AdapterError> {
        let event = match mobile_payload {
            None => Event::Authenticate(Box::new(self.entry_for(&current.0).await?)),
            Some(payload) => self.app_entry(&current.0, payload).await?,
        };
        self.update_flow(id, Some(current), |_| Ok(event.clone()))
            .await
    }

    /// What policy decides now that a browser is on the page; the kind's machine applies it.
    async fn entry_for(&self, flow: &Flow) -> Result<Entry, AdapterError> {
        let now = self.clock().now_ms();
        let network = self.policy_for(flow).network_action(flow.client_ip);
        let kind = flow.kind();
        Ok(match kind {
            FlowKind::Oob | FlowKind::Transaction if flow.one_time_device.is_some() => {
                // The flow brought its own device: it is the one, and only a network deny
                // stands in its way.
                let network = network.filter(|action| *action == NetworkAction::Deny);
                let first = match flow.devices.first() {
                    Some(only) => Some(self.first_pick(flow, &only.id).await?),
                    None => None,
                };
                match kind {
                    FlowKind::Transaction => Entry::Transaction {
                        devices: flow.devices.clone(),
                        network,
                        address_required: false,
                        first,
                    },
                    _ => Entry::Oob {
                        devices: flow.devices.clone(),
                        enrolment: None,
                        start: Box::new(oob::Start {
                            network,
                            first,
                            ..oob::Start::default()
                        }),
                    },
                }
            }
            FlowKind::Oob | FlowKind::Transaction => {
                let user = self
                    .find_user_with_devices(&flow.user_id, user::Passcodes::Read)
                    .await?
                    .ok_or(AdapterError::NotFound("user"))?;
                let devices = device::listed(self.store(), &user).await?;
                self.start_second_factor(flow.head.clone(), &user, &devices, network, kind)
                    .await?
            }
            FlowKind::Registration => Entry::Registration {
                network,
                pairing: self.pairing_offer(flow, now),
            },
            FlowKind::NewDevice => {
                let (devices, admission) = self.admission(flow).await?;
                Entry::NewDevice {
                    devices,
                    network,
                    admission,
                }
            }
            FlowKind::Qr => {
                let flow_ttl = Duration::from_secs(self.config().policy.flow_ttl_secs);
                Entry::Qr {
                    network,
                    codes: self.new_qr_codes(&flow.id, flow_ttl).await?,
                }
            }
            FlowKind::Passwordless => Entry::Passwordless {
                network,
                sign_in: Box::new(self.passkey_sign_in()?),
            },
            FlowKind::Ciba | FlowKind::DeviceAuthorization => {
                return Err(AdapterError::internal("this kind has no browser entry"));
            }
        })
    }

    /// How a new device is admitted into `flow` under policy, and the devices the flow
    /// then shows (narrowed to the primary when it verifies): as `new_device` does. A
    /// registration pairs at once (the federation server asked for exactly that); so does
    /// an out-of-band sign-in of a user with no device yet when `enrol_on_the_spot` allows
    /// pairing one there.
    async fn admission(
        &self,
        flow: &Flow,
    ) -> Result<(Option<Vec<DeviceSummary>>, Admission), AdapterError> {
        let now = self.clock().now_ms();
        let at_once = || Admission::Individually(self.pairing_offer(flow, now));
        let policy = &self.config().policy;
        if flow.kind() == FlowKind::Registration
            || !matches!(
                policy.additional_trusted_devices,
                AdditionalTrustedDevices::VerifyWithPrimary
            )
        {
            return Ok((None, at_once()));
        }
        let store = self.store();
        let user = user::find_with_devices(store, &flow.user_id, user::Passcodes::Read).await?;
        let devices = match &user {
            Some(user) => device::listed(store, user).await?,
            None => Vec::new(),
        };
        let (default, passcode_devices) = user
            .map(|user| (user.default_device, user.passcode_devices))
            .unwrap_or_default();
        let mut head = flow.head.clone();
        match self
            .primary_pick(&mut head, &devices, default.as_ref(), &passcode_devices)
            .await?
        {
            None if flow.kind() == FlowKind::Oob && policy.enrol_on_the_spot => {
                Ok((None, at_once()))
            }
            primary => Ok((Some(head.devices), Admission::ByPrimary(primary))),
        }
    }

    /// Reads a native app's `mobilePayload`: a trusted device's (its id as `iss`), or an
    /// app's not trusted yet (its new key, self-signed). Every refusal is the caller's
    /// mistake (400) and leaves nothing behind but a spent `jti`.
    async fn app_entry(&self, flow: &Flow, payload: &str) -> Result<Event, AdapterError> {
        match flow.kind() {
            FlowKind::Transaction => {
                return Err(refused(
                    "a transaction is approved on the device that shows it: post \
                     authenticate {} and approve the request",
                ));
            }
            FlowKind::Qr => {
                return Err(refused(
                    "a QR sign-on has no user until a device scans its code: post \
                     authenticate {}",
                ));
            }
            FlowKind::Passwordless => {
                return Err(refused(
                    "a passwordless sign-in has no user until a passkey names one: post \
                     authenticate {}",
                ));
            }
            _ => {}
        }
        let now = SystemTime::UNIX_EPOCH + Duration::from_millis(self.clock().now_ms());
        let network = self.policy_for(flow).network_action(flow.client_ip);
        match device_key::mobile_payload_type(payload).as_deref() {
            Some(assent_proto::mobile::TRUSTED_DEVICE_PAYLOAD_TYPE) => {
                let untrusted =
                    || refused("the mobilePayload is not from a device trusted for this user");
                let device_id = crate::jwt::unverified_issuer(payload)
                    .and_then(|id| DeviceId::parse(&id))
                    .ok_or_else(untrusted)?;
                let device = device::find(self.store(), &device_id)
                    .await?
                    .filter(|device| device.serves(&flow.user_id))
                    // A one-time device answers for its own flow only.
                    .filter(|device| {
                        !device.one_time || flow.one_time_device.as_ref() == Some(&device.id)
                    })
                    .ok_or_else(untrusted)?;
                let claims = device_key::verify_trusted_device_payload(
                    payload,
                    &device.public_key,
                    device.id.as_str(),
                    now,
                )
                .map_err(refused)?;
                if claims.flow_id != flow.id.as_str() {
                    return Err(refused("the mobilePayload was signed for another flow"));
                }
                self.spend_payload_jti(&keys::device_jti(&device.id, &sha256(&claims.jti)))
                    .await?;
                let summary = summaries(std::slice::from_ref(&device), None).remove(0);
                Ok(Event::AppAuthorized {
                    device: summary,
                    network,
                })
            }
            Some(assent_proto::mobile::NEW_DEVICE_PAYLOAD_TYPE) => {
                let (key, claims) =
                    device_key::verify_new_device_payload(payload, now).map_err(refused)?;
                if claims.flow_id != flow.id.as_str() {
                    return Err(refused("the mobilePayload was signed for another flow"));
                }
                let holder = sha256(&serde_json::to_string(key.as_map()).unwrap_or_default());
                self.spend_payload_jti(&keys::new_app_jti(&holder, &sha256(&claims.jti)))
                    .await?;
                let (devices, admission) = self.admission(flow).await?;
                Ok(Event::AppArrived(Box::new(AppArrival {
                    key,
                    devices,
                    network,
                    admission,
                    nonce: random_alphanumeric(24),
                })))
            }
            _ => Err(refused(
                "the mobilePayload is neither a trusted device's nor a new app's (a compact \
                 JWS from the app's SDK)",
            )),
        }
    }

    /// Spends a mobile payload's `jti`, once: one atomic set-if-absent with a TTL. The
    /// marker is the signer's (device or new key), not the flow's, so it cannot share the
    /// flow's commit under Redis Cluster; a payload whose flow then refuses it is simply
    /// spent, and the app signs another.
    async fn spend_payload_jti(&self, key: &str) -> Result<(), AdapterError> {
        match self.store().spend(key, jti_ttl()).await? {
            true => Ok(()),
            false => Err(refused("the mobilePayload was already used (jti)")),
        }
    }
}

fn sha256(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}
