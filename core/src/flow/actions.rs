//! The Authentication API's actions on a flow: choosing and managing devices, continuing,
//! canceling, authenticating a trusted app, and the long `poll`.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use super::engine::Versioned;
use super::machine::Fresh;
use super::service::{parse_flow_id, summaries};
use super::{Action, Event, Flow, Method, Status, View};
use crate::device::{self, Device, validate_label};
use crate::error::{AdapterError, FlowError};
use crate::ids::{DeviceId, FlowId};
use crate::{Adapter, keys};

/// An Authentication API action with its parameters.
#[derive(Clone, Debug)]
pub enum FlowAction {
    /// Push to this device.
    SelectDevice(String),
    /// Make this device the default.
    SetDefaultDevice(String),
    /// Rename a device.
    UpdateDeviceNickname {
        /// The device.
        id: String,
        /// Its new nickname.
        nickname: String,
    },
    /// Unpair a device.
    RemoveDevice(String),
    /// Move on after `MFA_COMPLETED`.
    Continue,
    /// Give up.
    Cancel,
    /// Abandon a device registration (the widget's `cancelDevicePairing`).
    CancelPairing,
    /// `authenticate`: a browser enters (`{}`), or a native app (`{mobilePayload}`), or a
    /// trusted app answers a device authorization's server payload.
    Authenticate {
        /// The app's compact JWS, absent for a browser.
        mobile_payload: Option<String>,
    },
    /// A one-time passcode for the current device.
    CheckOtp(String),
    /// Send the passcode again (`resend`, or the widget's `resendOtp`).
    Resend(Action),
    /// Start setting up the missing methods.
    SetupMfa,
    /// The method to pair (the widget's `deviceType`).
    SelectPairingMethod(String),
    /// The phone number or email address to pair.
    SubmitTarget {
        /// SMS, voice or email.
        method: Method,
        /// The address.
        address: String,
    },
    /// The passcode proving the new method works.
    Activate {
        /// The method being paired.
        method: Method,
        /// The passcode.
        otp: String,
    },
    /// A new WebAuthn credential (`activateSecurityKeyDevice`, `activatePlatformDevice`).
    ActivateWebauthn {
        /// SECURITY_KEY or PLATFORM.
        method: Method,
        /// The widget's `attestation` (a JSON string).
        attestation: String,
        /// The page's origin, as the browser reported it.
        origin: String,
    },
    /// A WebAuthn authenticator's signed answer (`checkAssertion`).
    CheckAssertion {
        /// The widget's `assertion` (a JSON string).
        assertion: String,
        /// The page's origin, as the browser reported it.
        origin: String,
    },
}

impl FlowAction {
    /// The Authentication API action this is.
    pub fn action(&self) -> Action {
        match self {
            Self::SelectDevice(_) => Action::SelectDevice,
            Self::SetDefaultDevice(_) => Action::SetDefaultDevice,
            Self::UpdateDeviceNickname { .. } => Action::UpdateDeviceNickname,
            Self::RemoveDevice(_) => Action::RemoveDevice,
            Self::Continue => Action::ContinueAuthentication,
            Self::Cancel => Action::CancelAuthentication,
            Self::CancelPairing => Action::CancelDevicePairing,
            Self::Authenticate { .. } => Action::Authenticate,
            Self::CheckOtp(_) => Action::CheckOtp,
            Self::Resend(action) => *action,
            Self::SetupMfa => Action::SetupMfa,
            Self::SelectPairingMethod(_) => Action::SelectDevicePairingMethod,
            Self::SubmitTarget { method, .. } => match method {
                Method::Voice => Action::SubmitVoiceTarget,
                Method::Email => Action::SubmitEmailTarget,
                _ => Action::SubmitSmsTarget,
            },
            Self::Activate { method, .. } => match method {
                Method::Voice => Action::ActivateVoiceDevice,
                Method::Email => Action::ActivateEmailDevice,
                Method::Totp => Action::ActivateTotpDevice,
                _ => Action::ActivateSmsDevice,
            },
            Self::ActivateWebauthn { method, .. } => match method {
                Method::Platform => Action::ActivatePlatformDevice,
                _ => Action::ActivateSecurityKeyDevice,
            },
            Self::CheckAssertion { .. } => Action::CheckAssertion,
        }
    }
}

impl Adapter {
    /// Performs an Authentication API action. Whether the flow offers it now is checked
    /// here, once, by the same list `_links` shows.
    /// Returns the flow and, when this request was the flow's first, the binding secret it
    /// minted.
    pub async fn act(
        &self,
        id: &str,
        presented: Option<&str>,
        action: FlowAction,
    ) -> Result<(Flow, Option<String>), AdapterError> {
        let id = parse_flow_id(id)?;
        let id = &id;
        let action = &action;
        let run = |current| async move {
            // A refused request leaves nothing behind, its binding included: the browser
            // that comes next can still bind the flow.
            let (current, minted) = Self::bound_for_action(current, presented)?;
            let flow = self.act_on(id, current, action.clone()).await?;
            Ok((flow, minted))
        };
        match action {
            // Managing devices changes records other than the flow, with no commit of the
            // flow first: decided on a fresh read, never on the cached version.
            FlowAction::SetDefaultDevice(_)
            | FlowAction::UpdateDeviceNickname { .. }
            | FlowAction::RemoveDevice(_) => run(self.load_any(id).await?).await,
            _ => self.on_latest(id, &run).await,
        }
    }

    async fn act_on(
        &self,
        id: &FlowId,
        (flow, version): Versioned,
        action: FlowAction,
    ) -> Result<Flow, AdapterError> {
        let id = id.clone();
        let now = self.clock().now_ms();
        // Refuse before anything is read or written for it.
        if !flow.allowed_actions(now).contains(&action.action()) {
            return Err(FlowError::NotAllowed {
                action: action.action().as_str(),
                status: flow.status(now).as_str(),
            }
            .into());
        }
        let current = Some((flow, version));
        match action {
            FlowAction::SelectDevice(device) => {
                let device = DeviceId::parse(&device).ok_or(FlowError::UnknownDevice)?;
                let Some((flow, version)) = current else {
                    return Err(AdapterError::internal("no flow"));
                };
                // Picking the passcode device again asks for the code again (the widget's
                // "Resend" does exactly that).
                if matches!(flow.view(), View::Otp { device: current, sent: Some(_) } if *current == device)
                {
                    return on_heap(|| self.resend_code(&id, (flow, version))).await;
                }
                let pick = on_heap(|| self.prepare_selection(&flow, &device)).await?;
                let event = Event::SelectDevice { device, pick };
                on_heap(|| self.update_flow(&id, Some((flow, version)), |_| Ok(event.clone())))
                    .await
            }
            FlowAction::CheckOtp(otp) | FlowAction::Activate { otp, .. } => {
                let current = current.ok_or_else(|| AdapterError::internal("no flow"))?;
                on_heap(|| self.check_code(&id, current, &otp)).await
            }
            FlowAction::ActivateWebauthn {
                attestation,
                origin,
                ..
            } => {
                let current = current.ok_or_else(|| AdapterError::internal("no flow"))?;
                on_heap(|| self.activate_webauthn(&id, current, &attestation, &origin)).await
            }
            FlowAction::CheckAssertion { assertion, origin } => {
                let current = current.ok_or_else(|| AdapterError::internal("no flow"))?;
                if current.0.kind() == super::FlowKind::Passwordless {
                    return on_heap(|| self.check_passkey(&id, current, &assertion, &origin)).await;
                }
                on_heap(|| self.check_assertion(&id, current, &assertion, &origin)).await
            }
            FlowAction::Resend(_) => {
                let current = current.ok_or_else(|| AdapterError::internal("no flow"))?;
                on_heap(|| self.resend_code(&id, current)).await
            }
            FlowAction::SetupMfa => {
                on_heap(|| self.update_flow(&id, current, |_| Ok(Event::SetupStarted))).await
            }
            FlowAction::SelectPairingMethod(device_type) => {
                let current = current.ok_or_else(|| AdapterError::internal("no flow"))?;
                on_heap(|| self.choose_pairing_method(&id, current, &device_type)).await
            }
            FlowAction::SubmitTarget { method, address } => {
                let current = current.ok_or_else(|| AdapterError::internal("no flow"))?;
                on_heap(|| self.submit_target(&id, current, method, &address)).await
            }
            FlowAction::SetDefaultDevice(device) => {
                let flow = current
                    .map(|(flow, _)| flow)
                    .ok_or_else(|| AdapterError::internal("no flow"))?;
                let device = on_heap(|| self.flow_device(&flow, &device)).await?;
                device::set_default(self.store(), &flow.user_id, &device.id).await?;
                on_heap(|| self.refresh_devices(&flow)).await
            }
            FlowAction::UpdateDeviceNickname {
                id: device,
                nickname,
            } => {
                let flow = current
                    .map(|(flow, _)| flow)
                    .ok_or_else(|| AdapterError::internal("no flow"))?;
                let nickname = nickname.trim().to_owned();
                validate_label("nickname", &nickname)?;
                let device = on_heap(|| self.flow_device(&flow, &device)).await?;
                let (mut device, version) = device::find_versioned(self.store(), &device.id)
                    .await?
                    .ok_or(FlowError::UnknownDevice)?;
                device.nickname = Some(nickname);
                device::update(self.store(), &device, version).await?;
                on_heap(|| self.refresh_devices(&flow)).await
            }
            FlowAction::RemoveDevice(device) => {
                let flow = current
                    .map(|(flow, _)| flow)
                    .ok_or_else(|| AdapterError::internal("no flow"))?;
                if flow.devices.len() <= 1 {
                    return Err(AdapterError::Invalid(
                        "the last device cannot be removed during sign-in".to_owned(),
                    ));
                }
                let device = on_heap(|| self.flow_device(&flow, &device)).await?;
                // Through unpair: a shared device stays with its other users.
                on_heap(|| self.unpair(&flow.user_id, device.id.as_str())).await?;
                on_heap(|| self.refresh_devices(&flow)).await
            }
            FlowAction::Authenticate { mobile_payload } => {
                let current = current.ok_or_else(|| AdapterError::internal("no flow"))?;
                if current.0.status(now) == Status::AuthenticationRequired {
                    return on_heap(|| self.enter(&id, current, mobile_payload.as_deref())).await;
                }
                let mobile_payload = mobile_payload.ok_or_else(|| {
                    AdapterError::Invalid(
                        "mobilePayload is required: sign the serverPayload with the device key"
                            .to_owned(),
                    )
                })?;
                let current = Some(current);
                let flow = current
                    .as_ref()
                    .map(|(flow, _)| flow)
                    .ok_or_else(|| AdapterError::internal("no flow"))?;
                let untrusted = || {
                    AdapterError::Invalid(
                        "the mobile payload is not from a device trusted for this user".to_owned(),
                    )
                };
                let device_id = crate::device_key::mobile_payload_device(&mobile_payload)
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
                let claims =
                    crate::device_key::verify_mobile_payload(&mobile_payload, &device.public_key)
                        .map_err(|reason| AdapterError::Invalid(reason.to_owned()))?;
                if claims.flow_id != flow.id.as_str() || claims.device_id != device.id.as_str() {
                    return Err(AdapterError::Invalid(
                        "the mobile payload was signed for another flow".to_owned(),
                    ));
                }
                let summary = summaries(std::slice::from_ref(&device), None).remove(0);
                on_heap(|| {
                    self.update_flow(&id, current, |_| {
                        Ok(Event::DeviceAuthorized {
                            device: summary.clone(),
                            nonce: claims.nonce.clone(),
                        })
                    })
                })
                .await
                .map_err(|error| match error {
                    AdapterError::Flow(FlowError::NotPending) => AdapterError::Invalid(
                        "the mobile payload answers another challenge".to_owned(),
                    ),
                    other => other,
                })
            }
            FlowAction::Continue => {
                on_heap(|| self.update_flow(&id, current, |_| Ok(Event::Continue))).await
            }
            FlowAction::Cancel | FlowAction::CancelPairing => {
                on_heap(|| self.update_flow(&id, current, |_| Ok(Event::Cancel))).await
            }
        }
    }

    async fn flow_device(&self, flow: &Flow, id: &str) -> Result<Device, AdapterError> {
        let id = DeviceId::parse(id).ok_or(FlowError::UnknownDevice)?;
        if !flow.devices.iter().any(|known| known.id == id) {
            return Err(FlowError::UnknownDevice.into());
        }
        match device::find(self.store(), &id).await? {
            Some(device) if device.serves(&flow.user_id) => Ok(device),
            _ => Err(FlowError::UnknownDevice.into()),
        }
    }

    async fn refresh_devices(&self, flow: &Flow) -> Result<Flow, AdapterError> {
        let devices = self.offered_now(flow).await?;
        self.update_flow(&flow.id, None, |_| {
            Ok(Event::DevicesChanged {
                devices: devices.clone(),
            })
        })
        .await
    }

    /// The `poll` action: returns at once unless the flow waits for something (the
    /// device's answer, a pairing, a scan), else waits — at most `wait`, the configured
    /// cap, and until what it waits for expires — for the flow to change. Returns the flow
    /// and, when this poll was the flow's first request, the binding secret it minted.
    pub async fn wait_for_flow(
        &self,
        id: &str,
        presented: Option<&str>,
        wait: Duration,
    ) -> Result<(Flow, Option<String>), AdapterError> {
        let id = parse_flow_id(id)?;
        let mut subscription = self.store().subscribe(&keys::flow_channel(&id));
        // Boxed, like the re-read below: an open poll's future is sized by its largest
        // step, and it sleeps in the smallest one.
        let ((flow, version), minted) = Box::pin(self.bound_flow(&id, presented)).await?;
        let Some(wait) = self.poll_wait(&flow, wait) else {
            return Ok((flow, minted));
        };
        // Asleep, a poll holds its flow id, its subscription and its timer: the decoded
        // flow goes now and is read again on waking.
        drop(flow);
        let _open = self.metrics().long_poll_started();
        let until = tokio::time::Instant::now() + wait;
        loop {
            let woken = subscription
                .wait(until.saturating_duration_since(tokio::time::Instant::now()))
                .await;
            let (flow, now_version) = Box::pin(self.load_versioned(&id)).await?;
            // A wake-up for a write this poll already saw (pub/sub may deliver it after
            // the read, across a Cluster) waits on rather than answering the same state.
            if !woken || now_version != version || tokio::time::Instant::now() >= until {
                return Ok((flow, minted));
            }
        }
    }

    /// How long a poll of `flow` may wait for it to change; `None` when it answers at once.
    fn poll_wait(&self, flow: &Flow, wait: Duration) -> Option<Duration> {
        let now = self.clock().now_ms();
        // `poll` is a read: accepted in any state, so that a poll racing the device's
        // answer sees the answer instead of an error; `_links` offers it only while there
        // is something to wait for.
        let deadline_ms = match (flow.view(), flow.status(now)) {
            (View::Push(push), Status::PushConfirmationWaiting) => push.expires_at_ms,
            (View::MobileActivation(offer), Status::MobileActivationRequired) => {
                offer.expires_at_ms
            }
            // Until the page shows the next code, or a waiting selection gives way to one.
            (
                View::QrCode {
                    claimed_until_ms: Some(until),
                    ..
                },
                _,
            ) if until > now => until,
            (View::QrCode { codes, .. }, _) => codes.next_code_at_ms(now),
            _ => return None,
        };
        let until_timeout = Duration::from_millis(deadline_ms.saturating_sub(now));
        let wait = wait.min(self.long_poll_cap()).min(until_timeout);
        (!wait.is_zero()).then_some(wait)
    }

    /// The random values a device's answer may need: always drawn, written only if the
    /// transition uses them.
    pub(crate) fn fresh_for(&self, flow: &Flow) -> Fresh {
        Fresh {
            auth_id: crate::ids::AuthId::generate(&flow.id),
            pairing: (flow.kind() == super::FlowKind::NewDevice)
                .then(|| self.pairing_offer(flow, self.clock().now_ms())),
        }
    }
}

/// Runs the future `make` builds from the heap. It is built in this function's frame, not
/// in the caller's: unoptimised builds reserve stack in a poll function for every future
/// it awaits, and `act_on`'s one `match` over every action awaits many, which came near a
/// server worker thread's 2 MiB.
#[inline(never)]
fn on_heap<'a, T, F>(make: impl FnOnce() -> F) -> Pin<Box<dyn Future<Output = T> + Send + 'a>>
where
    F: Future<Output = T> + Send + 'a,
{
    Box::pin(make())
}
