//! The policy side of second-factor flows: which devices a flow offers (enrolled, backups,
//! under the allowed methods and the OS minimum), what policy decides at start (network
//! rules, the skip window, mandatory methods), reaching a chosen device (a push within
//! the user's limits, or a passcode), and sending pushes.

use std::time::Duration;

use rand::Rng;
use rand::seq::SliceRandom;
use sha2::{Digest, Sha256};

use super::machine::{Entry, FirstPick, Pick};
use super::passcode::check_send_allowed;
use super::service::summaries;
use super::{DeviceSummary, Enrolment, Event, Flow, FlowKind, Head, Method, oob};
use crate::device::{self, Device};
use crate::error::{AdapterError, FlowError};
use crate::ids::{AuthId, DeviceId};
use crate::notify::{Channel, Message};
use crate::otp_device::OtpDevice;
use crate::policy::{MfaPolicy, NetworkAction};
use crate::store::Ttl;
use crate::user::{Passcodes, UserId, UserWithDevices};
use crate::{Adapter, keys};

impl Adapter {
    /// The policy of a flow: the global one, with the user's group's and then the
    /// application's overrides.
    pub(crate) fn policy_for(&self, head: &Head) -> &MfaPolicy {
        self.config()
            .policies
            .for_sign_in(head.policy_group.as_deref(), head.application.id.as_deref())
    }

    /// The devices a flow offers now, under its policy (after the person managed them).
    pub(crate) async fn offered_now(
        &self,
        flow: &Flow,
    ) -> Result<Vec<DeviceSummary>, AdapterError> {
        let user = self
            .find_user_with_devices(&flow.user_id, Passcodes::Read)
            .await?
            .ok_or(AdapterError::NotFound("user"))?;
        let mobile = device::listed(self.store(), &user).await?;
        let mut offered = offered_devices(self.policy_for(flow), &user, &mobile);
        if flow.kind() == FlowKind::Transaction {
            offered.retain(|device| device.method == Method::PingidMobile && !device.backup);
        }
        Ok(offered)
    }

    /// What policy says when an out-of-band or transaction flow is entered: what the
    /// network rules and the skip window say, the devices offered (enrolled, backups), the
    /// mandatory methods, and the device itself when only one can be used. Reads once; the
    /// kind's machine decides.
    pub(crate) async fn start_second_factor(
        &self,
        mut head: Head,
        user: &UserWithDevices,
        mobile: &[Device],
        network: Option<NetworkAction>,
        kind: FlowKind,
    ) -> Result<Entry, AdapterError> {
        let now = self.clock().now_ms();
        let policy = self.policy_for(&head);
        let transaction = kind == FlowKind::Transaction;
        let address_required = head.client_ip.is_none()
            && policy
                .network_rules
                .iter()
                .any(|rule| rule.action == NetworkAction::Deny);
        let default = user.default_device.as_ref();
        let otp_devices = &user.passcode_devices;
        head.devices = offered_devices(policy, user, mobile);
        if transaction {
            head.devices
                .retain(|device| device.method == Method::PingidMobile && !device.backup);
        }
        let candidates = oob::usable(&head);
        // Policy's device selection: the primary at once, or the person picks.
        let first = match policy.device_selection.first_device(&candidates, default) {
            Some(device) if !address_required && network != Some(NetworkAction::Deny) => {
                Some(self.first_pick(&head, device).await?)
            }
            _ => None,
        };
        if transaction {
            return Ok(Entry::Transaction {
                devices: head.devices,
                network,
                address_required,
                first,
            });
        }
        let recent_mfa = match recent_origin(policy, &head) {
            Some(origin) if network.is_none() => self
                .store()
                .get(&keys::recent_mfa(&head.user_id, &origin))
                .await?
                .is_some(),
            _ => false,
        };
        // Whether the user has anything at all to prove themselves with: only a user with
        // nothing may set methods up before giving a second factor.
        let has_nothing = mobile.is_empty() && otp_devices.is_empty() && head.devices.is_empty();
        let enrolled: Vec<Method> = mobile
            .iter()
            .map(|_| Method::PingidMobile)
            .chain(otp_devices.iter().map(|device| device.method))
            .collect();
        let (imported, missing): (Vec<Method>, Vec<Method>) = policy
            .mandatory_authentication_methods
            .iter()
            .copied()
            .filter(|method| !enrolled.contains(method))
            // An imported token cannot be set up in a flow: an operator imports it.
            .partition(|method| method.is_imported());
        if !missing.is_empty() {
            head.enrolment = Some(Enrolment {
                missing,
                authenticated: None,
            });
        }
        let enrol_on_the_spot = (self.config().policy.enrol_on_the_spot && head.devices.is_empty())
            .then(|| self.pairing_offer(&head, now));
        let start = oob::Start {
            network,
            address_required,
            recent_mfa,
            has_nothing,
            enrol_on_the_spot,
            first,
            token_missing: imported.first().copied(),
        };
        Ok(Entry::Oob {
            devices: head.devices,
            enrolment: head.enrolment,
            start: Box::new(start),
        })
    }

    /// Reaches the one device a flow starts with, through policy; a refusal by policy
    /// (the push limit, the OS minimum) is the flow's to report.
    pub(crate) async fn first_pick(
        &self,
        head: &Head,
        device: &DeviceId,
    ) -> Result<FirstPick, AdapterError> {
        match self.prepare_selection(head, device).await {
            Ok(pick) => Ok(FirstPick::Reached {
                device: device.clone(),
                pick: Box::new(pick),
            }),
            Err(AdapterError::Flow(
                refused @ (FlowError::PushLimited
                | FlowError::DeviceRefused(_)
                | FlowError::TooManyPushes),
            )) => Ok(FirstPick::Refused(refused)),
            Err(error) => Err(error),
        }
    }

    /// How picking `device` reaches it: a push (within the user's push limit), a passcode
    /// sent to it, or a passcode it computes itself.
    pub(crate) async fn prepare_selection(
        &self,
        head: &Head,
        device: &DeviceId,
    ) -> Result<Pick, AdapterError> {
        let chosen = head
            .devices
            .iter()
            .find(|known| known.id == *device)
            .ok_or(FlowError::UnknownDevice)?;
        if let Some(reason) = &chosen.unusable {
            return Err(FlowError::DeviceRefused(reason.clone()).into());
        }
        let policy = self.policy_for(head);
        if chosen.method == Method::PingidMobile {
            // The flow's own cap first, so that a refused push does not spend the user's.
            if head.pushes_sent >= self.config().policy.max_pushes_per_flow {
                return Err(FlowError::TooManyPushes.into());
            }
            self.count_push(&head.user_id, policy).await?;
            return Ok(Pick::Push {
                auth_id: AuthId::generate(&head.id),
                number_match: head.policy.number_matching.then(number_match),
            });
        }
        if chosen.method.is_webauthn() {
            // Boxed: a large future, which would otherwise swell every caller's.
            let sign_in = Box::pin(self.webauthn_sign_in(head, device)).await?;
            return Ok(Pick::Assertion(Box::new(sign_in)));
        }
        match &chosen.address {
            Some(address) if chosen.method.is_sent() => {
                check_send_allowed(head, policy)?;
                self.count_send(&head.user_id, address, policy).await?;
                let (sent, message) = self.new_code(head, chosen.method, address, policy, 1)?;
                Ok(Pick::Code {
                    sent: Some(sent),
                    message: Some(message),
                })
            }
            _ => Ok(Pick::Code {
                sent: None,
                message: None,
            }),
        }
    }

    /// Counts one event in a sliding window of `window_secs` (a limit of 0 counts nothing);
    /// `refused` when the window is already full. One atomic store call, shared by every
    /// instance.
    pub(crate) async fn within_limit(
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

    /// Puts a request on its device's pending list and wakes the device, before the
    /// transition that sends it is committed: an instance that dies (or a store that
    /// fails) between the commit and its effects must not leave a flow waiting for an
    /// answer its device cannot see. The list shows only requests their flow waits for
    /// (see `list_settled`), so an entry whose commit never lands stays hidden and expires.
    pub(crate) async fn list_push(
        &self,
        device: &DeviceId,
        auth_id: &AuthId,
    ) -> Result<(), AdapterError> {
        // The list outlives the longest request it can hold (an out-of-band push or a CIBA
        // request), so that re-setting its expiry on each add never drops a live one.
        let longest = self
            .config()
            .policy
            .push_timeout_secs
            .max(self.config().ciba.max_expiry_secs);
        let ttl = Ttl::Set(Duration::from_secs(longest + 60));
        // The wake-up rides in the same script: the woken device may find the request
        // before its commit lands, and `list_settled` waits a moment for that.
        self.store()
            .index_add(
                &keys::device_pending(device),
                auth_id.as_str(),
                ttl,
                Some(&keys::device_channel(device)),
            )
            .await?;
        Ok(())
    }

    /// After the commit: announces the push through the push sender (the request is on
    /// the device's pending list already, see [`Self::list_push`]).
    pub(crate) fn send_push(&self, flow: &Flow, device: &DeviceId, auth_id: &AuthId) {
        self.announce_push(flow, device, auth_id);
    }

    /// Announces a push through the push sender, off the request; when it cannot be
    /// delivered, the flow's machine decides whether the app's passcode stands in.
    fn announce_push(&self, flow: &Flow, device: &DeviceId, auth_id: &AuthId) {
        if !self.delivery().has(Channel::Push) {
            return;
        }
        let silent = flow.push().is_some_and(|push| push.silent);
        let message = Message {
            channel: Channel::Push,
            to: device.to_string(),
            subject: flow.message.title.clone(),
            text: flow.message.body.clone(),
            data: push_data(&PushData {
                auth_id: auth_id.as_str(),
                user_id: flow.user_id.as_str(),
                kind: flow.kind().as_str(),
                silent,
            }),
        };
        let (adapter, flow_id, auth_id) = (self.clone(), flow.id.clone(), auth_id.clone());
        tokio::spawn(async move {
            if adapter.delivery().deliver(&message).await.is_ok() {
                return;
            }
            let undelivered = Event::PushUndelivered { auth_id };
            let result = adapter
                .update_flow(&flow_id, None, |_| Ok(undelivered.clone()))
                .await;
            if let Err(error) = result {
                tracing::debug!(%error, "no passcode fallback after the failed push");
            }
        });
    }

    /// Remembers a completed MFA from this address (and client device), for the skip
    /// window.
    pub(crate) async fn remember_mfa(&self, flow: &Flow) -> Result<(), AdapterError> {
        if flow.kind() != FlowKind::Oob {
            return Ok(());
        }
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

/// What a push notification carries for the app: which request to fetch.
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct PushData<'a> {
    auth_id: &'a str,
    user_id: &'a str,
    kind: &'static str,
    silent: bool,
}

/// Structured data for a message (a push's request, a passcode's flow).
pub(super) fn push_data(data: &impl serde::Serialize) -> serde_json::Value {
    serde_json::to_value(data).unwrap_or_default()
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
pub(super) fn recent_origin(policy: &MfaPolicy, flow: &Head) -> Option<String> {
    if policy.skip_mfa_within_secs == 0 {
        return None;
    }
    // The same browser (the federation server's device cookie), from the same address,
    // for the same application (whose policy set the window): an address alone may be a
    // whole carrier's NAT.
    let ip = flow.client_ip?;
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
        Method::Yubikey => ("YUBIKEY", "YubiKey"),
        Method::OathToken => ("OATH_TOKEN", "Hardware token"),
        Method::SecurityKey => ("SECURITY_KEY", "Security key"),
        Method::Platform => ("PLATFORM", "This device's authenticator"),
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
        // A WebAuthn authenticator signs a challenge: it gives no passcode.
        otp_enabled: !device.method.is_webauthn(),
        push_enabled: false,
        address: device.address.clone(),
        unusable: device
            .webauthn
            .as_ref()
            .and_then(|key| key.disabled.clone()),
        backup: false,
        code_length: match device.method {
            Method::Yubikey => u32::try_from(crate::yubikey::OTP_LEN).ok(),
            Method::OathToken => device.oath.as_ref().map(|token| token.digits),
            _ => None,
        },
    }
}

/// What a flow offers: the allowed mobile devices (those too old marked unusable), the
/// allowed passcode devices, and the backups policy enables for the profile's addresses.
pub(super) fn offered_devices(
    policy: &MfaPolicy,
    user: &UserWithDevices,
    mobile: &[Device],
) -> Vec<DeviceSummary> {
    let (profile, default) = (&user.profile, user.default_device.as_ref());
    let otp_devices = &user.passcode_devices;
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
            .map(|device| DeviceSummary {
                default: default == Some(&device.id),
                ..otp_summary(device)
            }),
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
            yubikey: None,
            oath: None,
            webauthn: None,
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
