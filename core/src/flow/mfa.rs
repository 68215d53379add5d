//! The policy side of out-of-band flows: which devices a flow offers (enrolled, backups,
//! under the allowed methods and the OS minimum), network rules and the skip window at
//! start, choosing a device (a push within the user's limits, or a passcode), and
//! announcing pushes through the push sender.

use std::net::IpAddr;
use std::time::Duration;

use rand::Rng;
use rand::seq::SliceRandom;
use sha2::{Digest, Sha256};

use super::passcode::check_send_allowed;
use super::service::{now_ms, summaries};
use super::{DeviceSummary, Enrolment, Event, Flow, FlowKind, FlowState, Method, Status, apply};
use crate::device::{self, Device};
use crate::error::{AdapterError, FlowError};
use crate::ids::{AuthId, DeviceId};
use crate::notify::{Channel, Message};
use crate::otp_device::{self, OtpDevice};
use crate::policy::{MfaPolicy, NetworkAction};
use crate::store::Ttl;
use crate::user::{UserId, UserProfile};
use crate::{Adapter, keys};

/// A message to send once the flow that refers to it is stored.
pub(crate) struct Outbound(pub(super) Message);

/// What choosing a device leads to: the event to apply, and what to send after.
pub(crate) struct Selection {
    pub(crate) event: Event,
    pub(crate) outbound: Option<Outbound>,
}

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
    pub(super) async fn within_limit(
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
    pub(super) async fn count_attempt(
        &self,
        user: &UserId,
        policy: &MfaPolicy,
    ) -> Result<(), AdapterError> {
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
    pub(super) async fn count_send(
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

/// The hash naming where a sign-in came from (address and client device), when the skip
/// window applies.
pub(super) fn recent_origin(policy: &MfaPolicy, flow: &Flow) -> Option<String> {
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
pub(super) fn number_match() -> (u8, Vec<u8>) {
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
pub(super) fn offered_devices(
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

#[cfg(test)]
mod tests {
    use super::*;

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
