//! Flows: what a federation server asked for, where it stands, and how it ended.
//!
//! A flow is one record (one Redis hash tag): the request sent to the device lives inside
//! it, so the device's answer and the flow's transition are one atomic compare-and-set.

mod actions;
mod binding;
pub mod ciba;
mod ciba_service;
mod device_side;
mod enrolment;
mod mfa;
mod oob;
mod passcode;
pub mod qr;
pub mod service;

use serde::{Deserialize, Serialize};

pub use self::ciba_service::StartCiba;
pub use self::oob::{Event, apply};
pub use self::service::OneTimeDevice;

/// What runs after a device's decision, without delaying the device's answer.
pub trait DecisionHook: Send + Sync {
    /// The flow just decided (approved or denied). Must not block: spawn any I/O.
    fn decided(&self, flow: &Flow);
}
pub use self::actions::FlowAction;
pub use self::device_side::{Decision, DeviceRequest};
pub use self::service::{FlowResult, StartFlow};
use crate::ids::{AuthId, DeviceId, FlowId};
use crate::otp::SentCode;
use crate::params::{DynamicParams, Message};
pub use crate::policy::Method;
use crate::user::UserId;

/// What the federation server asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FlowKind {
    /// Out of band / step up authentication from web (seed 004).
    Oob,
    /// Transaction approval: the device shows and signs the dynamic parameters.
    Transaction,
    /// A CIBA request: no browser, a relying party waits for tokens.
    Ciba,
    /// Automatic device registration: the authenticated user pairs a new device.
    Registration,
    /// Device authorization: a trusted app proves itself with its device key, no
    /// interaction.
    DeviceAuthorization,
    /// QR code sign-on: no user known until a trusted device scans the code.
    Qr,
    /// A new, untrusted device of a known user wants to pair (seed 004, OOB from mobile).
    NewDevice,
}

impl FlowKind {
    /// The name used in the API and in metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Oob => "oob",
            Self::Transaction => "transaction",
            Self::Ciba => "ciba",
            Self::Registration => "registration",
            Self::DeviceAuthorization => "device_authorization",
            Self::Qr => "qr",
            Self::NewDevice => "new_device",
        }
    }
}

/// The application the user is signing in to, as the federation server describes it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Application {
    /// Display name.
    pub name: String,
    /// The federation server's id for it.
    pub id: Option<String>,
    /// Icon shown on the device.
    pub icon_url: Option<String>,
}

/// A device as a flow shows it: captured at flow start, refreshed when the user manages
/// devices, so that rendering a flow costs one store read.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceSummary {
    /// Device id.
    pub id: DeviceId,
    /// Widget type: `iPhone`, `Android`, `Mobile`.
    pub kind: String,
    /// The name the app reported.
    pub name: String,
    /// The user's name for it.
    pub nickname: Option<String>,
    /// What identifies it to the person (the model), already safe to show.
    pub target: String,
    /// The user's default device.
    pub default: bool,
    /// How it authenticates.
    #[serde(default = "mobile")]
    pub method: Method,
    /// Whether it can give a one-time passcode (the app's own seed, or a passcode device).
    #[serde(default)]
    pub otp_enabled: bool,
    /// Whether it receives push notifications.
    #[serde(default = "yes")]
    pub push_enabled: bool,
    /// Where passcodes go (phone number or email), never shown unmasked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// Why policy does not let it be used (an OS older than required).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unusable: Option<String>,
    /// A backup method from the user's profile (seed 001 SMSBackup, phoneBackup,
    /// emailBackup), not an enrolled device.
    #[serde(default)]
    pub backup: bool,
}

fn mobile() -> Method {
    Method::PingidMobile
}

fn yes() -> bool {
    true
}

impl DeviceSummary {
    /// Whether a person may pick it now.
    pub fn usable(&self) -> bool {
        self.unusable.is_none()
    }
}

/// A request sent to a device and not answered yet.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Push {
    /// The id the device answers.
    pub auth_id: AuthId,
    /// The device asked.
    pub device_id: DeviceId,
    /// When it was sent (ms since the epoch).
    pub sent_at_ms: u64,
    /// When it times out (ms since the epoch).
    pub expires_at_ms: u64,
    /// A silent push: the app answers with its key alone, no person involved (the extra
    /// verification after a QR scan); an approval request follows it.
    #[serde(default)]
    pub silent: bool,
    /// Number matching: the number the browser shows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub number: Option<u8>,
    /// Number matching: what the device offers to pick from (the number and two others).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub choices: Vec<u8>,
}

/// How the second factor was given.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Approval {
    /// The device that approved.
    pub device_id: DeviceId,
    /// `push`, `sms`, `voice`, `email`, `totp`, `mobile_otp`, `registration`...
    pub method: String,
    /// When (ms since the epoch).
    pub decided_at_ms: u64,
}

/// Where a flow stands. Time-outs are not stored: a push past its expiry *is* timed out,
/// so reading a flow never needs to write it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum FlowState {
    /// The user has several devices and must pick one.
    DeviceSelectionRequired,
    /// A QR code waits for a trusted device to scan it.
    QrCodeShown {
        /// The one-time token the code carries (`<flowId>.<secret>`).
        token: String,
        /// When it stops working; a poll after that shows a new one.
        expires_at_ms: u64,
    },
    /// A shared device scanned the code; the person picks which of its users they are.
    QrUserSelection {
        /// The device that scanned.
        device: DeviceId,
        /// Its users to choose from.
        users: Vec<UserId>,
        /// The token scanned: the selection must present it again.
        token: String,
        /// When an unfinished selection gives way to a new code.
        expires_at_ms: u64,
    },
    /// The app must sign the server payload with its device key.
    MobilePayloadRequired {
        /// The one-time challenge.
        nonce: String,
    },
    /// A one-time pairing key waits for the app (shown as text and QR code).
    MobileActivationRequired {
        /// The key, shown to the person while the flow lives (and only then).
        pairing_key: String,
        /// When the key stops working (ms since the epoch).
        expires_at_ms: u64,
    },
    /// A request is on the device.
    PushWaiting {
        /// The request.
        push: Push,
    },
    /// The device denied: final.
    PushRejected {
        /// The request denied.
        push: Push,
        /// Why, when not a plain denial (the wrong number picked).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// The device approved; the browser continues.
    MfaCompleted {
        /// How.
        approval: Approval,
    },
    /// The second factor cannot be given (no usable device...).
    MfaFailed {
        /// Why, for the person and the federation server.
        reason: String,
    },
    /// A one-time passcode is expected from this device.
    OtpRequired {
        /// The device (or backup) the code comes from.
        device: DeviceId,
        /// The code sent to it (SMS, voice, email); none when the device computes it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        sent: Option<SentCode>,
    },
    /// Policy requires methods the user lacks: they must set them up.
    SetupRequired,
    /// The person picks which method to pair.
    PairingMethodRequired,
    /// The person gives the phone number or email address to pair.
    PairingTargetRequired {
        /// SMS, voice or email.
        method: Method,
    },
    /// A passcode proves the new method works before it is saved.
    ActivationRequired {
        /// The method being paired.
        method: Method,
        /// The phone number or email address (not for TOTP).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        address: Option<String>,
        /// The code sent to it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        sent: Option<SentCode>,
        /// The authenticator app's new secret (TOTP), shown while the flow lives.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        totp_secret: Option<String>,
    },
    /// Policy let the sign-in through without a second factor (trusted network, recent
    /// MFA); the federation server sees `COMPLETED` with the reason.
    Skipped {
        /// Why.
        reason: String,
    },
    /// Done: the federation server may pick up the result.
    Completed {
        /// How.
        approval: Approval,
    },
    /// Ended without success after a rejection or a failure.
    Failed {
        /// Why.
        reason: String,
    },
    /// The person gave up.
    Canceled,
}

/// A flow's status as the Authentication API names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// `DEVICE_SELECTION_REQUIRED`
    DeviceSelectionRequired,
    /// `MOBILE_ACTIVATION_REQUIRED`
    MobileActivationRequired,
    /// `MOBILE_PAIRING_REQUIRED`: the app in the web view answers `serverPayload`.
    MobilePairingRequired,
    /// `AUTHENTICATION_CODE_RESPONSE_REQUIRED`: a QR code waits to be scanned.
    AuthenticationCodeResponseRequired,
    /// `PUSH_CONFIRMATION_WAITING`
    PushConfirmationWaiting,
    /// `PUSH_CONFIRMATION_REJECTED`
    PushConfirmationRejected,
    /// `PUSH_CONFIRMATION_TIMED_OUT`
    PushConfirmationTimedOut,
    /// `OTP_REQUIRED`
    OtpRequired,
    /// `MFA_SETUP_REQUIRED`
    MfaSetupRequired,
    /// `DEVICE_PAIRING_METHOD_REQUIRED`
    DevicePairingMethodRequired,
    /// `SMS_PAIRING_TARGET_REQUIRED`
    SmsPairingTargetRequired,
    /// `VOICE_PAIRING_TARGET_REQUIRED`
    VoicePairingTargetRequired,
    /// `EMAIL_PAIRING_TARGET_REQUIRED`
    EmailPairingTargetRequired,
    /// `SMS_ACTIVATION_REQUIRED`
    SmsActivationRequired,
    /// `VOICE_ACTIVATION_REQUIRED`
    VoiceActivationRequired,
    /// `EMAIL_ACTIVATION_REQUIRED`
    EmailActivationRequired,
    /// `TOTP_ACTIVATION_REQUIRED`
    TotpActivationRequired,
    /// `MFA_COMPLETED`
    MfaCompleted,
    /// `MFA_FAILED`
    MfaFailed,
    /// `COMPLETED`
    Completed,
    /// `RESUME`: completed, and control returns to `returnUrl`.
    Resume,
    /// `FAILED`
    Failed,
    /// `CANCELED`
    Canceled,
}

impl Status {
    /// The PingFederate name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::DeviceSelectionRequired => "DEVICE_SELECTION_REQUIRED",
            Self::MobileActivationRequired => "MOBILE_ACTIVATION_REQUIRED",
            Self::MobilePairingRequired => "MOBILE_PAIRING_REQUIRED",
            Self::AuthenticationCodeResponseRequired => "AUTHENTICATION_CODE_RESPONSE_REQUIRED",
            Self::PushConfirmationWaiting => "PUSH_CONFIRMATION_WAITING",
            Self::PushConfirmationRejected => "PUSH_CONFIRMATION_REJECTED",
            Self::PushConfirmationTimedOut => "PUSH_CONFIRMATION_TIMED_OUT",
            Self::OtpRequired => "OTP_REQUIRED",
            Self::MfaSetupRequired => "MFA_SETUP_REQUIRED",
            Self::DevicePairingMethodRequired => "DEVICE_PAIRING_METHOD_REQUIRED",
            Self::SmsPairingTargetRequired => "SMS_PAIRING_TARGET_REQUIRED",
            Self::VoicePairingTargetRequired => "VOICE_PAIRING_TARGET_REQUIRED",
            Self::EmailPairingTargetRequired => "EMAIL_PAIRING_TARGET_REQUIRED",
            Self::SmsActivationRequired => "SMS_ACTIVATION_REQUIRED",
            Self::VoiceActivationRequired => "VOICE_ACTIVATION_REQUIRED",
            Self::EmailActivationRequired => "EMAIL_ACTIVATION_REQUIRED",
            Self::TotpActivationRequired => "TOTP_ACTIVATION_REQUIRED",
            Self::MfaCompleted => "MFA_COMPLETED",
            Self::MfaFailed => "MFA_FAILED",
            Self::Completed => "COMPLETED",
            Self::Resume => "RESUME",
            Self::Failed => "FAILED",
            Self::Canceled => "CANCELED",
        }
    }

    /// Whether the flow's outcome is settled, so the federation server may pick it up. A
    /// denial and a failure are final even while the browser still shows them.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            Self::Completed
                | Self::Resume
                | Self::Failed
                | Self::Canceled
                | Self::PushConfirmationRejected
                | Self::MfaFailed
        )
    }

    /// The outcome as the federation server reads it: a denial or a failure is `FAILED`.
    pub fn outcome(self) -> &'static str {
        match self {
            Self::PushConfirmationRejected | Self::MfaFailed => "FAILED",
            // RESUME is what the browser is told; for the federation server it completed.
            Self::Resume => "COMPLETED",
            other => other.as_str(),
        }
    }
}

/// An action of the Authentication API.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// `selectDevice {deviceRef:{id}}`: push to that device (also: retry after a time-out).
    SelectDevice,
    /// `setDefaultDevice {deviceRef:{id}}`
    SetDefaultDevice,
    /// `updateDeviceNickname {id, nickname}`
    UpdateDeviceNickname,
    /// `removeDevice {deviceRef:{id}}`
    RemoveDevice,
    /// `poll`: wait for the device's answer.
    Poll,
    /// `continueAuthentication`
    ContinueAuthentication,
    /// `cancelAuthentication`
    CancelAuthentication,
    /// `cancelDevicePairing`: what the widget sends to abandon a registration.
    CancelDevicePairing,
    /// `authenticate {mobilePayload}`: a trusted app's signed answer.
    Authenticate,
    /// `checkOtp {otp}`
    CheckOtp,
    /// `resend`: send the passcode again.
    Resend,
    /// `resendOtp`: what the widget's activation pages send to resend.
    ResendOtp,
    /// `setupMfa`
    SetupMfa,
    /// `selectDevicePairingMethod {devicePairingMethod:{deviceType}}`
    SelectDevicePairingMethod,
    /// `submitSmsTarget {phone}`
    SubmitSmsTarget,
    /// `submitVoiceTarget {phone}`
    SubmitVoiceTarget,
    /// `submitEmailTarget {email}`
    SubmitEmailTarget,
    /// `activateSmsDevice {otp}`
    ActivateSmsDevice,
    /// `activateVoiceDevice {otp}`
    ActivateVoiceDevice,
    /// `activateEmailDevice {otp}`
    ActivateEmailDevice,
    /// `activateTotpDevice {otp}`
    ActivateTotpDevice,
}

impl Action {
    /// Every action, in the order `_links` lists them.
    pub const ALL: [Self; 21] = [
        Self::SelectDevice,
        Self::SetDefaultDevice,
        Self::UpdateDeviceNickname,
        Self::RemoveDevice,
        Self::Poll,
        Self::ContinueAuthentication,
        Self::CancelAuthentication,
        Self::CancelDevicePairing,
        Self::Authenticate,
        Self::CheckOtp,
        Self::Resend,
        Self::ResendOtp,
        Self::SetupMfa,
        Self::SelectDevicePairingMethod,
        Self::SubmitSmsTarget,
        Self::SubmitVoiceTarget,
        Self::SubmitEmailTarget,
        Self::ActivateSmsDevice,
        Self::ActivateVoiceDevice,
        Self::ActivateEmailDevice,
        Self::ActivateTotpDevice,
    ];

    /// The action id.
    pub fn id(self) -> &'static str {
        match self {
            Self::SelectDevice => "selectDevice",
            Self::SetDefaultDevice => "setDefaultDevice",
            Self::UpdateDeviceNickname => "updateDeviceNickname",
            Self::RemoveDevice => "removeDevice",
            Self::Poll => "poll",
            Self::ContinueAuthentication => "continueAuthentication",
            Self::CancelAuthentication => "cancelAuthentication",
            Self::CancelDevicePairing => "cancelDevicePairing",
            Self::Authenticate => "authenticate",
            Self::CheckOtp => "checkOtp",
            Self::Resend => "resend",
            Self::ResendOtp => "resendOtp",
            Self::SetupMfa => "setupMfa",
            Self::SelectDevicePairingMethod => "selectDevicePairingMethod",
            Self::SubmitSmsTarget => "submitSmsTarget",
            Self::SubmitVoiceTarget => "submitVoiceTarget",
            Self::SubmitEmailTarget => "submitEmailTarget",
            Self::ActivateSmsDevice => "activateSmsDevice",
            Self::ActivateVoiceDevice => "activateVoiceDevice",
            Self::ActivateEmailDevice => "activateEmailDevice",
            Self::ActivateTotpDevice => "activateTotpDevice",
        }
    }

    /// Parses an action id.
    pub fn parse(id: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|action| action.id() == id)
    }
}

/// One flow, as stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Flow {
    /// Its id.
    pub id: FlowId,
    /// What was asked for.
    pub kind: FlowKind,
    /// The federation server that started it (the only one that may pick up the result).
    pub client_id: String,
    /// Whom it is about.
    pub user_id: UserId,
    /// The application signed in to.
    pub application: Application,
    /// The browser's IP address, as the federation server saw it.
    pub client_ip: Option<String>,
    /// The federation server's opaque id of the browser (a device cookie), for the
    /// skip-MFA window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_device: Option<String>,
    /// Dynamic parameters, shown on the device and bound by its proof.
    pub params: DynamicParams,
    /// What the device shows.
    pub message: Message,
    /// Where the browser goes back to when done.
    pub return_url: Option<String>,
    /// When it started (ms since the epoch).
    pub created_at_ms: u64,
    /// The user's devices.
    pub devices: Vec<DeviceSummary>,
    /// Where it stands.
    pub state: FlowState,
    /// Whether the federation server has picked the result up (for CIBA: whether the
    /// tokens were issued).
    pub result_picked_up: bool,
    /// What a CIBA request adds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ciba: Option<ciba::CibaRequest>,
    /// Whether the person may manage devices from this flow (policy at flow start).
    #[serde(default)]
    pub manage_devices: bool,
    /// Pushes sent so far (first and retries), capped by policy.
    #[serde(default)]
    pub pushes_sent: u32,
    /// SHA-256 (hex) of the secret binding the flow to its browser, once bound.
    #[serde(default)]
    pub browser_binding: Option<String>,
    /// The device trusted for this flow only, if the flow brought one.
    #[serde(default)]
    pub one_time_device: Option<DeviceId>,
    /// The policy choices the state machine needs, fixed at flow start.
    #[serde(default)]
    pub policy: FlowPolicy,
    /// Wrong passcodes so far.
    #[serde(default)]
    pub otp_failures: u32,
    /// Passcodes sent so far, to any device or address (capped by policy).
    #[serde(default)]
    pub codes_sent: u32,
    /// Methods policy makes mandatory that the user still has to set up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enrolment: Option<Enrolment>,
}

/// The policy choices a flow's state machine reads (seed 001), fixed at flow start.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlowPolicy {
    /// `useCode`: the app's passcode may be typed instead of waiting for the push.
    pub use_code: bool,
    /// `OTP Fallback`: a push that cannot be delivered or answered falls back to a code.
    pub otp_fallback: bool,
    /// Number matching on pushes.
    pub number_matching: bool,
    /// The administrator's message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admin_message: Option<String>,
    /// Digits of a sent passcode (what the page's input accepts).
    #[serde(default)]
    pub otp_length: u32,
}

/// Mandatory methods still to set up, and the second factor already given, if any.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Enrolment {
    /// Methods still missing.
    pub missing: Vec<Method>,
    /// The second factor the person gave before being asked to set up the rest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authenticated: Option<Approval>,
}

impl Flow {
    /// The status at `now_ms`.
    pub fn status(&self, now_ms: u64) -> Status {
        match &self.state {
            FlowState::DeviceSelectionRequired => Status::DeviceSelectionRequired,
            // An expired pairing key cannot be used any more: the registration failed.
            FlowState::MobileActivationRequired { expires_at_ms, .. }
                if now_ms >= *expires_at_ms =>
            {
                Status::MfaFailed
            }
            FlowState::MobileActivationRequired { .. } => Status::MobileActivationRequired,
            FlowState::MobilePayloadRequired { .. } => Status::MobilePairingRequired,
            FlowState::QrCodeShown { .. } | FlowState::QrUserSelection { .. } => {
                Status::AuthenticationCodeResponseRequired
            }
            FlowState::PushWaiting { push } if now_ms >= push.expires_at_ms => {
                Status::PushConfirmationTimedOut
            }
            FlowState::PushWaiting { .. } => Status::PushConfirmationWaiting,
            FlowState::PushRejected { .. } => Status::PushConfirmationRejected,
            FlowState::OtpRequired { .. } => Status::OtpRequired,
            FlowState::SetupRequired => Status::MfaSetupRequired,
            FlowState::PairingMethodRequired => Status::DevicePairingMethodRequired,
            FlowState::PairingTargetRequired { method } => match method {
                Method::Voice => Status::VoicePairingTargetRequired,
                Method::Email => Status::EmailPairingTargetRequired,
                _ => Status::SmsPairingTargetRequired,
            },
            FlowState::ActivationRequired { method, .. } => match method {
                Method::Voice => Status::VoiceActivationRequired,
                Method::Email => Status::EmailActivationRequired,
                Method::Totp => Status::TotpActivationRequired,
                _ => Status::SmsActivationRequired,
            },
            FlowState::MfaCompleted { .. } => Status::MfaCompleted,
            FlowState::MfaFailed { .. } => Status::MfaFailed,
            FlowState::Completed { .. } | FlowState::Skipped { .. }
                if self.return_url.is_some() =>
            {
                Status::Resume
            }
            FlowState::Completed { .. } | FlowState::Skipped { .. } => Status::Completed,
            FlowState::Failed { .. } => Status::Failed,
            FlowState::Canceled => Status::Canceled,
        }
    }

    /// The actions allowed at `now_ms`: exactly what `_links` lists.
    pub fn allowed_actions(&self, now_ms: u64) -> Vec<Action> {
        use Action::*;
        // The selected device can give a code now: `useCode` while the push waits, the
        // fallback once it timed out.
        let code_instead = |allowed: bool| {
            allowed
                && self
                    .selected_device()
                    .and_then(|id| self.devices.iter().find(|device| device.id == *id))
                    .is_some_and(|device| device.otp_enabled)
        };
        match self.status(now_ms) {
            Status::DeviceSelectionRequired if self.manage_devices => vec![
                SelectDevice,
                SetDefaultDevice,
                UpdateDeviceNickname,
                RemoveDevice,
                CancelAuthentication,
            ],
            Status::DeviceSelectionRequired => vec![SelectDevice, CancelAuthentication],
            Status::MobileActivationRequired => {
                vec![Poll, CancelAuthentication, CancelDevicePairing]
            }
            Status::MobilePairingRequired => vec![Authenticate, CancelAuthentication],
            Status::AuthenticationCodeResponseRequired => vec![Poll, CancelAuthentication],
            Status::PushConfirmationWaiting if code_instead(self.policy.use_code) => {
                vec![Poll, CheckOtp, SelectDevice, CancelAuthentication]
            }
            Status::PushConfirmationWaiting => vec![Poll, SelectDevice, CancelAuthentication],
            Status::PushConfirmationTimedOut if code_instead(self.policy.otp_fallback) => {
                vec![CheckOtp, SelectDevice, CancelAuthentication]
            }
            Status::PushConfirmationTimedOut => vec![SelectDevice, CancelAuthentication],
            Status::OtpRequired => match &self.state {
                FlowState::OtpRequired { sent: Some(_), .. } => {
                    vec![
                        CheckOtp,
                        Resend,
                        ResendOtp,
                        SelectDevice,
                        CancelAuthentication,
                    ]
                }
                _ => vec![CheckOtp, SelectDevice, CancelAuthentication],
            },
            Status::MfaSetupRequired => vec![SetupMfa, CancelAuthentication],
            Status::DevicePairingMethodRequired => vec![
                SelectDevicePairingMethod,
                CancelDevicePairing,
                CancelAuthentication,
            ],
            Status::SmsPairingTargetRequired => {
                vec![SubmitSmsTarget, CancelDevicePairing, CancelAuthentication]
            }
            Status::VoicePairingTargetRequired => {
                vec![SubmitVoiceTarget, CancelDevicePairing, CancelAuthentication]
            }
            Status::EmailPairingTargetRequired => {
                vec![SubmitEmailTarget, CancelDevicePairing, CancelAuthentication]
            }
            Status::SmsActivationRequired => vec![
                ActivateSmsDevice,
                ResendOtp,
                CancelDevicePairing,
                CancelAuthentication,
            ],
            Status::VoiceActivationRequired => vec![
                ActivateVoiceDevice,
                ResendOtp,
                CancelDevicePairing,
                CancelAuthentication,
            ],
            Status::EmailActivationRequired => vec![
                ActivateEmailDevice,
                ResendOtp,
                CancelDevicePairing,
                CancelAuthentication,
            ],
            Status::TotpActivationRequired => vec![
                ActivateTotpDevice,
                CancelDevicePairing,
                CancelAuthentication,
            ],
            Status::PushConfirmationRejected | Status::MfaFailed => vec![CancelAuthentication],
            Status::MfaCompleted => vec![ContinueAuthentication],
            Status::Completed | Status::Resume | Status::Failed | Status::Canceled => vec![],
        }
    }

    /// The push waiting on the device, if any (expired or not).
    pub fn push(&self) -> Option<&Push> {
        match &self.state {
            FlowState::PushWaiting { push } | FlowState::PushRejected { push, .. } => Some(push),
            _ => None,
        }
    }

    /// The device currently selected, if any.
    pub fn selected_device(&self) -> Option<&DeviceId> {
        match &self.state {
            FlowState::PushWaiting { push } | FlowState::PushRejected { push, .. } => {
                Some(&push.device_id)
            }
            FlowState::MfaCompleted { approval } | FlowState::Completed { approval } => {
                Some(&approval.device_id)
            }
            FlowState::OtpRequired { device, .. } => Some(device),
            _ => None,
        }
    }

    /// Why it failed, if it did.
    pub fn failure_reason(&self) -> Option<&str> {
        match &self.state {
            FlowState::MfaFailed { reason } | FlowState::Failed { reason } => Some(reason),
            FlowState::MobileActivationRequired { .. } => {
                Some("the pairing key expired before a device used it")
            }
            FlowState::PushRejected {
                reason: Some(reason),
                ..
            } => Some(reason),
            FlowState::PushRejected { .. } => Some("the request was denied on the device"),
            FlowState::Skipped { reason } => Some(reason),
            _ => None,
        }
    }
}
