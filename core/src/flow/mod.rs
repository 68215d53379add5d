//! Flows: what a federation server asked for, where it stands, and how it ended.
//!
//! Each kind is one pure state machine in its own module ([`oob`], [`transaction`],
//! [`ciba`], [`registration`], [`device_authorization`], [`qr`], [`new_device`],
//! [`passwordless`]) with its
//! own enum of states: `start` builds the first state, `apply` answers an [`Event`] with a
//! [`Transition`] (the next flow and the [`Effect`]s to run once it is stored). The
//! [`engine`] loads, applies, commits with one compare-and-set, and only then runs the
//! effects. A flow is one record (one Redis hash tag): the request sent to the device
//! lives inside it, so the device's answer and the flow's transition are one atomic step.

mod actions;
mod binding;
pub(crate) mod cache;
pub mod ciba;
mod ciba_service;
pub mod device_authorization;
mod device_side;
mod engine;
mod enrolment;
mod entry;
#[cfg(test)]
mod entry_tests;
mod machine;
mod mfa;
pub mod new_device;
pub mod oob;
mod passcode;
pub mod passwordless;
mod passwordless_service;
pub mod qr;
mod qr_service;
pub mod registration;
pub mod service;
mod steps;
mod stored;
#[cfg(test)]
pub(crate) mod tests;
pub mod transaction;
pub mod verify;
mod webauthn;

use std::ops::{Deref, DerefMut};

use serde::{Deserialize, Serialize};

pub use self::actions::FlowAction;
pub use self::ciba_service::StartCiba;
pub use self::device_side::DeviceRequest;
pub use self::machine::{AppArrival, Context, Effect, Entry, Event, Metric, Transition};
pub use self::passwordless_service::{FinalizePasswordless, PasswordlessOutcome};
pub use self::qr_service::{LiveQr, QrOutcome, QrUser};
pub use self::service::{
    AccessingDevice, AuthenticationDevice, FlowResult, OneTimeDevice, StartFlow,
};
pub use self::verify::{Decision, DeviceAnswer};
use crate::ids::{AuthId, DeviceId, FlowId};
use crate::otp::SentCode;
use crate::params::{DynamicParams, Message};
pub use crate::policy::Method;
use crate::user::UserId;

/// What runs after a device's decision, without delaying the device's answer.
pub trait DecisionHook: Send + Sync {
    /// The flow just decided (approved or denied). Must not block: spawn any I/O.
    fn decided(&self, flow: &Flow);
}

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
    /// Passwordless sign-in: no user known until a passkey's assertion names its owner.
    Passwordless,
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
            Self::Passwordless => "passwordless",
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
    /// The length of the code it computes, when not the TOTP length: a hardware OATH
    /// token's digits, a YubiKey OTP's 44 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code_length: Option<u32>,
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

/// How the second factor was given: what the Adapter result and the CIBA tokens report.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ApprovalMethod {
    /// A push approved on the paired device (signed by its key).
    Push,
    /// A code sent by text message.
    Sms,
    /// A code read out by a voice call.
    Voice,
    /// A code sent by email.
    Email,
    /// A code from an authenticator app.
    Totp,
    /// A code computed by the paired mobile app from its own seed.
    MobileOtp,
    /// A FIDO2 security key's signature (WebAuthn).
    SecurityKey,
    /// A platform authenticator's signature after it verified the person (WebAuthn).
    Platform,
    /// A YubiKey's OTP.
    Yubikey,
    /// A code from an OATH hardware token.
    OathToken,
    /// A new device was paired (registration, new device): no second factor by itself.
    Registration,
    /// A trusted app signed the flow's challenge with its device key.
    DeviceAuthorization,
    /// A trusted device scanned the QR code.
    Qr,
    /// Methods set up by a user who had none: no second factor was given.
    Enrolment,
}

/// The `acr` of a push approved with a device key.
pub const ACR_MOBILE_PUSH: &str = "urn:assent:acr:mobile-push";
/// The `acr` of a one-time passcode.
pub const ACR_OTP: &str = "urn:assent:acr:otp";
/// The `acr` of a WebAuthn authenticator's signature: bound to the origin, so phishing
/// resistant.
pub const ACR_PHISHING_RESISTANT: &str = "urn:assent:acr:phishing-resistant";

impl ApprovalMethod {
    /// The name in results (`method`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Push => "push",
            Self::Sms => "sms",
            Self::Voice => "voice",
            Self::Email => "email",
            Self::Totp => "totp",
            Self::MobileOtp => "mobile_otp",
            Self::SecurityKey => "security_key",
            Self::Platform => "platform",
            Self::Yubikey => "yubikey",
            Self::OathToken => "oath_token",
            Self::Registration => "registration",
            Self::DeviceAuthorization => "device_authorization",
            Self::Qr => "qr",
            Self::Enrolment => "enrolment",
        }
    }

    /// The PingID connector's `authenticationType` for it.
    pub fn authentication_type(self) -> &'static str {
        match self {
            Self::Push => "PUSH",
            Self::MobileOtp => "OTP",
            Self::Sms => "SMS",
            Self::Voice => "VOICE",
            Self::Email => "EMAIL",
            Self::Totp => "TOTP",
            Self::SecurityKey => "SECURITY_KEY",
            Self::Platform => "PLATFORM",
            Self::Yubikey => "YUBIKEY",
            Self::OathToken => "OATH_TOKEN",
            Self::Registration => "REGISTRATION",
            Self::DeviceAuthorization => "DEVICE_AUTHORIZATION",
            Self::Qr => "QR",
            Self::Enrolment => "ENROLMENT",
        }
    }

    /// A passcode checked with `method`'s device.
    pub fn of_passcode(method: Method) -> Self {
        match method {
            Method::PingidMobile => Self::MobileOtp,
            Method::Sms => Self::Sms,
            Method::Voice => Self::Voice,
            Method::Email => Self::Email,
            Method::Totp => Self::Totp,
            // WebAuthn gives no passcode; named for its method all the same.
            Method::SecurityKey => Self::SecurityKey,
            Method::Platform => Self::Platform,
            Method::Yubikey => Self::Yubikey,
            Method::OathToken => Self::OathToken,
        }
    }

    /// Authentication methods references (RFC 8176). A push is the device key plus the
    /// person's approval on it; a code is an OTP (by SMS or a call: `sms`, `tel`); a
    /// registration only shows that a new key was enrolled.
    pub fn amr(self) -> &'static [&'static str] {
        match self {
            Self::Push => &["mfa", "swk", "user"],
            Self::Sms => &["mfa", "sms", "otp"],
            Self::Voice => &["mfa", "tel", "otp"],
            Self::Email | Self::Totp => &["mfa", "otp"],
            Self::MobileOtp => &["mfa", "swk", "otp"],
            Self::SecurityKey => &["mfa", "hwk"],
            Self::Platform => &["mfa", "hwk", "user"],
            // A hardware key holding its secret: RFC 8176 `hwk`.
            Self::Yubikey | Self::OathToken => &["mfa", "hwk", "otp"],
            Self::Enrolment => &[],
            Self::Registration | Self::DeviceAuthorization | Self::Qr => &["swk"],
        }
    }

    /// The authentication context class reached.
    pub fn acr(self) -> Option<&'static str> {
        match self {
            Self::Push => Some(ACR_MOBILE_PUSH),
            Self::Sms
            | Self::Voice
            | Self::Email
            | Self::Totp
            | Self::MobileOtp
            | Self::Yubikey
            | Self::OathToken => Some(ACR_OTP),
            Self::SecurityKey | Self::Platform => Some(ACR_PHISHING_RESISTANT),
            _ => None,
        }
    }
}

/// How the second factor was given.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Approval {
    /// The device that approved.
    pub device_id: DeviceId,
    /// How.
    pub method: ApprovalMethod,
    /// When (ms since the epoch).
    pub decided_at_ms: u64,
}

/// A one-time pairing key shown while its flow waits for a device, and its expiry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PairingOffer {
    /// The key, shown to the person while the flow lives (and only then).
    pub pairing_key: String,
    /// When the key stops working (ms since the epoch).
    pub expires_at_ms: u64,
}

/// Where a flow stands: the state of its kind's machine. The kind is the variant, stored
/// as the one key of its object (`{"oob": {...}}`): unlike a tag among the fields, serde
/// reads that without buffering the state first.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FlowState {
    /// See [`oob`].
    Oob(oob::State),
    /// See [`transaction`].
    Transaction(transaction::State),
    /// See [`ciba`].
    Ciba(ciba::State),
    /// See [`registration`].
    Registration(registration::State),
    /// See [`device_authorization`].
    DeviceAuthorization(device_authorization::State),
    /// See [`qr`].
    Qr(qr::State),
    /// See [`new_device`].
    NewDevice(new_device::State),
    /// See [`passwordless`].
    Passwordless(passwordless::State),
}

impl FlowState {
    /// The kind of flow this state belongs to.
    pub fn kind(&self) -> FlowKind {
        match self {
            Self::Oob(_) => FlowKind::Oob,
            Self::Transaction(_) => FlowKind::Transaction,
            Self::Ciba(_) => FlowKind::Ciba,
            Self::Registration(_) => FlowKind::Registration,
            Self::DeviceAuthorization(_) => FlowKind::DeviceAuthorization,
            Self::Qr(_) => FlowKind::Qr,
            Self::NewDevice(_) => FlowKind::NewDevice,
            Self::Passwordless(_) => FlowKind::Passwordless,
        }
    }

    /// What the state shows, whatever the kind.
    pub fn view(&self) -> View<'_> {
        match self {
            Self::Oob(state) => state.view(),
            Self::Transaction(state) => state.view(),
            Self::Ciba(state) => state.view(),
            Self::Registration(state) => state.view(),
            Self::DeviceAuthorization(state) => state.view(),
            Self::Qr(state) => state.view(),
            Self::NewDevice(state) => state.view(),
            Self::Passwordless(state) => state.view(),
        }
    }
}

/// A state as the outside sees it, whatever the kind: what the Authentication API renders
/// and what the Adapter API reports. Time-outs are not stored: a push past its expiry *is*
/// timed out, so reading a flow never needs to write it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum View<'a> {
    /// Nothing happened yet: waiting for a browser (`authenticate {}`) or a native app
    /// (`authenticate {mobilePayload}`).
    AuthenticationRequired,
    /// The person picks a device.
    DeviceSelection,
    /// A request is on the device (timed out once past its expiry).
    Push(&'a Push),
    /// The device denied: final.
    PushRejected {
        /// The request denied.
        push: &'a Push,
        /// Why, when not a plain denial.
        reason: Option<&'a str>,
    },
    /// A one-time passcode is expected from this device.
    Otp {
        /// The device (or backup) the code comes from.
        device: &'a DeviceId,
        /// The code sent to it; none when the device computes it.
        sent: Option<&'a SentCode>,
    },
    /// Policy requires methods the user lacks.
    SetupRequired,
    /// The person picks which method to pair.
    PairingMethod,
    /// The person gives the phone number or email address to pair.
    PairingTarget(Method),
    /// A passcode proves the new method works before it is saved.
    Activation {
        /// The method being paired.
        method: Method,
        /// The phone number or email address (not for TOTP).
        address: Option<&'a str>,
        /// The code sent to it.
        sent: Option<&'a SentCode>,
        /// The authenticator app's new secret (TOTP).
        totp_secret: Option<&'a str>,
    },
    /// A new WebAuthn credential is to be created (security key or platform).
    WebauthnActivation {
        /// SECURITY_KEY or PLATFORM.
        method: Method,
        /// The creation options, as the widget reads them (a JSON string).
        options: &'a str,
    },
    /// A WebAuthn authenticator is to sign the challenge.
    Assertion {
        /// The device asked; none in a passwordless sign-in (any passkey answers).
        device: Option<&'a DeviceId>,
        /// The request options.
        options: &'a assent_proto::authn::PublicKeyCredentialRequestOptions,
    },
    /// A one-time pairing key waits for the app.
    MobileActivation(&'a PairingOffer),
    /// The app must sign the server payload with its device key (device authorization),
    /// or pair the key it entered with (automatic pairing).
    MobilePayload {
        /// The one-time challenge.
        nonce: &'a str,
        /// The key an app not trusted yet pairs with, and whether it has.
        pairing: Option<(&'a PairingOffer, bool)>,
    },
    /// A QR code waits to be scanned (or a shared device's user selection waits, until
    /// `claimed_until_ms`; after that the page shows a code again).
    QrCode {
        /// Where the codes shown come from.
        codes: &'a qr::QrCodes,
        /// While a selection waits: when it gives way to a new code.
        claimed_until_ms: Option<u64>,
    },
    /// The second factor was given; the browser continues.
    MfaCompleted(&'a Approval),
    /// The second factor cannot be given.
    MfaFailed(&'a str),
    /// Done: approved, or let through by policy (the reason says why).
    Completed {
        /// How, when a factor was given.
        approval: Option<&'a Approval>,
        /// Why no factor was needed (skipped by policy).
        skipped: Option<&'a str>,
    },
    /// Ended without success.
    Failed(&'a str),
    /// The person gave up.
    Canceled,
}

/// A flow's status as the Authentication API names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// `AUTHENTICATION_REQUIRED`: waiting for `authenticate`.
    AuthenticationRequired,
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
    /// `SECURITY_KEY_ACTIVATION_REQUIRED`
    SecurityKeyActivationRequired,
    /// `PLATFORM_ACTIVATION_REQUIRED`
    PlatformActivationRequired,
    /// `ASSERTION_REQUIRED`
    AssertionRequired,
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
            Self::AuthenticationRequired => "AUTHENTICATION_REQUIRED",
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
            Self::SecurityKeyActivationRequired => "SECURITY_KEY_ACTIVATION_REQUIRED",
            Self::PlatformActivationRequired => "PLATFORM_ACTIVATION_REQUIRED",
            Self::AssertionRequired => "ASSERTION_REQUIRED",
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

/// An action of the Authentication API: the wire's own enum, so the domain and the
/// API name actions one way.
pub use assent_proto::authn::ActionId as Action;

/// What every flow carries besides its state: who asked, for whom, and what the device
/// shows. Kind machines read it and update its counters.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Head {
    /// Its id.
    pub id: FlowId,
    /// The federation server that started it (the only one that may pick up the result).
    pub client_id: String,
    /// Whom it is about.
    pub user_id: UserId,
    /// The application signed in to.
    pub application: Application,
    /// The browser's IP address, as the federation server saw it (parsed at the boundary).
    pub client_ip: Option<std::net::IpAddr>,
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
    /// Whether the federation server has picked the result up (for CIBA: whether the
    /// tokens were issued).
    pub result_picked_up: bool,
    /// The user's language (BCP 47) at flow start, for the texts sent to them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
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
    /// The user group whose policy overrides apply (the first of the user's groups that
    /// has one), fixed at flow start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_group: Option<String>,
    /// Wrong passcodes so far.
    #[serde(default)]
    pub otp_failures: u32,
    /// Passcodes sent so far, to any device or address (capped by policy).
    #[serde(default)]
    pub codes_sent: u32,
    /// Methods policy makes mandatory that the user still has to set up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enrolment: Option<Enrolment>,
    /// The key of the app not trusted yet that entered the flow (`authenticate
    /// {mobilePayload}`): once admitted, only a pairing with this key completes the flow.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entering_app: Option<EnteringApp>,
}

/// A native app not trusted yet that entered a flow with its new key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnteringApp {
    /// The key it proved it holds (its self-signed `mobilePayload`).
    pub key: crate::device_key::PublicDeviceKey,
    /// The challenge its `serverPayload` carries.
    pub nonce: String,
}

/// One flow, as stored: its head and its kind's state. Only the kind machines and the
/// engine build one (see [`Head::into_flow`]). Stored as `{"head": {...}, "state":
/// {"<kind>": {...}}}`, which serde decodes in one pass; records of the earlier flat
/// layout still decode (see [`stored`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Flow {
    /// Who, what for, counters.
    pub head: Head,
    /// Where it stands.
    state: FlowState,
}

impl Deref for Flow {
    type Target = Head;

    fn deref(&self) -> &Head {
        &self.head
    }
}

impl DerefMut for Flow {
    fn deref_mut(&mut self) -> &mut Head {
        &mut self.head
    }
}

impl Head {
    /// The flow this head starts in `state`; for the kind machines only.
    pub(crate) fn into_flow(self, state: FlowState) -> Flow {
        Flow { head: self, state }
    }
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
    /// Where it stands.
    pub fn state(&self) -> &FlowState {
        &self.state
    }

    /// The same flow in `state`; for the kind machines only.
    pub(crate) fn with_state(mut self, state: FlowState) -> Flow {
        self.state = state;
        self
    }

    /// What was asked for.
    pub fn kind(&self) -> FlowKind {
        self.state.kind()
    }

    /// What the state shows.
    pub fn view(&self) -> View<'_> {
        self.state.view()
    }

    /// The status at `now_ms`.
    pub fn status(&self, now_ms: u64) -> Status {
        match self.view() {
            View::AuthenticationRequired => Status::AuthenticationRequired,
            View::DeviceSelection => Status::DeviceSelectionRequired,
            View::Push(push) if now_ms >= push.expires_at_ms => Status::PushConfirmationTimedOut,
            View::Push(_) => Status::PushConfirmationWaiting,
            View::PushRejected { .. } => Status::PushConfirmationRejected,
            View::Otp { .. } => Status::OtpRequired,
            View::SetupRequired => Status::MfaSetupRequired,
            View::PairingMethod => Status::DevicePairingMethodRequired,
            View::PairingTarget(method) => match method {
                Method::Voice => Status::VoicePairingTargetRequired,
                Method::Email => Status::EmailPairingTargetRequired,
                _ => Status::SmsPairingTargetRequired,
            },
            View::Activation { method, .. } => match method {
                Method::Voice => Status::VoiceActivationRequired,
                Method::Email => Status::EmailActivationRequired,
                Method::Totp => Status::TotpActivationRequired,
                _ => Status::SmsActivationRequired,
            },
            View::WebauthnActivation {
                method: Method::Platform,
                ..
            } => Status::PlatformActivationRequired,
            View::WebauthnActivation { .. } => Status::SecurityKeyActivationRequired,
            View::Assertion { .. } => Status::AssertionRequired,
            // An expired pairing key cannot be used any more: the registration failed.
            View::MobileActivation(offer) if now_ms >= offer.expires_at_ms => Status::MfaFailed,
            View::MobileActivation(_) => Status::MobileActivationRequired,
            // An unused pairing key past its expiry: the automatic pairing failed.
            View::MobilePayload {
                pairing: Some((offer, false)),
                ..
            } if now_ms >= offer.expires_at_ms => Status::MfaFailed,
            View::MobilePayload { .. } => Status::MobilePairingRequired,
            View::QrCode { .. } => Status::AuthenticationCodeResponseRequired,
            View::MfaCompleted(_) => Status::MfaCompleted,
            View::MfaFailed(_) => Status::MfaFailed,
            View::Completed { .. } if self.return_url.is_some() => Status::Resume,
            View::Completed { .. } => Status::Completed,
            View::Failed(_) => Status::Failed,
            View::Canceled => Status::Canceled,
        }
    }

    /// The actions allowed at `now_ms`: exactly what `_links` lists, and exactly what the
    /// engine lets through. Each kind decides.
    pub fn allowed_actions(&self, now_ms: u64) -> Vec<Action> {
        match &self.state {
            FlowState::Oob(_) => oob::actions(self, now_ms),
            FlowState::Transaction(_) => transaction::actions(self, now_ms),
            FlowState::Ciba(_) => Vec::new(),
            FlowState::Registration(_) => registration::actions(self, now_ms),
            FlowState::DeviceAuthorization(_) => device_authorization::actions(self, now_ms),
            FlowState::Qr(_) => qr::actions(self, now_ms),
            FlowState::NewDevice(_) => new_device::actions(self, now_ms),
            FlowState::Passwordless(_) => passwordless::actions(self, now_ms),
        }
    }

    /// The push waiting on the device, if any (expired or not).
    pub fn push(&self) -> Option<&Push> {
        match self.view() {
            View::Push(push) | View::PushRejected { push, .. } => Some(push),
            _ => None,
        }
    }

    /// The device currently selected, if any.
    pub fn selected_device(&self) -> Option<&DeviceId> {
        match self.view() {
            View::Push(push) | View::PushRejected { push, .. } => Some(&push.device_id),
            View::MfaCompleted(approval)
            | View::Completed {
                approval: Some(approval),
                ..
            } => Some(&approval.device_id),
            View::Otp { device, .. }
            | View::Assertion {
                device: Some(device),
                ..
            } => Some(device),
            _ => None,
        }
    }

    /// How the flow completed, once it has (`COMPLETED`; not `MFA_COMPLETED`).
    pub fn completed_approval(&self) -> Option<&Approval> {
        match self.view() {
            View::Completed { approval, .. } => approval,
            _ => None,
        }
    }

    /// Why it failed, if it did.
    pub fn failure_reason(&self) -> Option<&str> {
        match self.view() {
            View::MfaFailed(reason) | View::Failed(reason) => Some(reason),
            View::MobileActivation(_)
            | View::MobilePayload {
                pairing: Some((_, false)),
                ..
            } => Some("the pairing key expired before a device used it"),
            View::PushRejected {
                reason: Some(reason),
                ..
            } => Some(reason),
            View::PushRejected { .. } => Some("the request was denied on the device"),
            View::Completed {
                skipped: Some(reason),
                ..
            } => Some(reason),
            _ => None,
        }
    }
}
