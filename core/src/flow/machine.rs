//! The vocabulary of the flow machines: the [`Event`]s they answer, the [`Effect`]s they
//! ask for, the [`Transition`] that carries both, and the [`Context`] (time and limits)
//! they read instead of a clock or a configuration. Dispatch to the kind is here too.

use super::{
    DeviceSummary, Enrolment, Flow, FlowState, PairingOffer, ciba, device_authorization,
    new_device, oob, passwordless, qr, registration, transaction,
};
use crate::device_key::PublicDeviceKey;
use crate::error::FlowError;
use crate::ids::{AuthId, DeviceId};
use crate::notify::Message;
use crate::otp::SentCode;
use crate::otp_device::OtpDevice;
use crate::policy::NetworkAction;
use crate::user::UserId;

use super::verify::DeviceAnswer;

/// What a flow becomes, and what must happen once that is stored.
#[derive(Debug)]
pub struct Transition {
    /// The flow to store.
    pub next: Flow,
    /// What to do after the commit (or inside it, for the atomic ones).
    pub effects: Vec<Effect>,
}

impl Transition {
    /// A change with no effect.
    pub fn to(next: Flow) -> Self {
        Self {
            next,
            effects: Vec::new(),
        }
    }

    /// Adds an effect.
    pub fn with(mut self, effect: Effect) -> Self {
        self.effects.push(effect);
        self
    }

    /// Adds an effect when there is one.
    pub fn with_opt(mut self, effect: Option<Effect>) -> Self {
        self.effects.extend(effect);
        self
    }
}

/// Something the engine does because a transition was stored. A loser of a race runs
/// none of them.
#[derive(Debug, Clone)]
pub enum Effect {
    /// Put the flow's current request on the device's pending list, wake the device and
    /// announce it through the push sender.
    SendPush {
        /// The device.
        device: DeviceId,
        /// The request.
        auth_id: AuthId,
    },
    /// Deliver a passcode (SMS, voice, email).
    SendCode(Message),
    /// Create the one-time pairing key record for the flow's user. Written just before
    /// the transition: the key exists whenever the flow shows it.
    IssuePairingKey(PairingOffer),
    /// Remove an unused pairing key (its registration was canceled).
    WithdrawPairingKey(String),
    /// Save a passcode device the person just proved they hold.
    EnrolDevice(OtpDevice),
    /// Take an answered request off the device's pending list.
    ClearPending {
        /// The device.
        device: DeviceId,
        /// The request.
        auth_id: AuthId,
    },
    /// Remember the completed MFA for the skip window.
    RememberMfa,
    /// Tell the decision hook (CIBA notifications).
    Notify,
    /// Count something.
    Record(Metric),
}

/// What the metrics count besides starts and endings (which the engine counts itself).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    /// A device decided (`approve` / `deny`), timed from the flow's start.
    Decided(super::Decision),
}

/// What the machines read instead of a clock or a configuration.
#[derive(Debug, Clone, Copy)]
pub struct Context {
    /// Now (ms since the epoch).
    pub now_ms: u64,
    /// How long a device has to answer a push.
    pub push_timeout_ms: u64,
    /// How many pushes a flow may send in all.
    pub max_pushes: u32,
    /// Wrong passcodes that fail the authentication.
    pub max_otp_attempts: u32,
}

/// How a chosen device is reached: a push, or a passcode (sent, or computed by the device).
#[derive(Debug, Clone)]
pub enum Pick {
    /// A push with a fresh request id, and number matching when policy asks.
    Push {
        /// The request id.
        auth_id: AuthId,
        /// The number the browser shows and the three the device offers.
        number_match: Option<(u8, Vec<u8>)>,
    },
    /// A passcode: sent (with the message carrying it), or computed by the device.
    Code {
        /// The code sent, if any.
        sent: Option<SentCode>,
        /// The message carrying it.
        message: Option<Message>,
    },
    /// A WebAuthn authenticator signs a challenge.
    Assertion(Box<WebauthnSignIn>),
}

/// A WebAuthn sign-in ceremony under way: the options the browser gets and the state the
/// assertion is checked against.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct WebauthnSignIn {
    /// `publicKeyCredentialRequestOptions`.
    pub options: assent_proto::authn::PublicKeyCredentialRequestOptions,
    /// The ceremony state, with its challenge and expiry.
    pub pending: crate::webauthn_authentication::PendingAssertion,
}

/// What a checked assertion leads to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AssertionVerdict {
    /// It verified: the second factor is given.
    Passed,
    /// Refused; a new ceremony to try again with (a challenge answers once).
    Refused(Box<WebauthnSignIn>),
    /// Its signature counter did not move past the last one: a cloned authenticator (or
    /// the original, after a clone signed in). The credential is disabled.
    Cloned,
}

/// A WebAuthn set-up ceremony under way: the options the browser gets and the state the
/// attestation is checked against.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct WebauthnSetup {
    /// `publicKeyCredentialCreationOptions` (a JSON string).
    pub options: String,
    /// The ceremony state, with its challenge and expiry.
    pub pending: crate::webauthn_registration::PendingRegistration,
}

/// The device a flow starts with, when policy picks it: reached, or refused by policy
/// (the push limit, the OS minimum).
#[derive(Debug, Clone)]
pub enum FirstPick {
    /// Reached this way.
    Reached {
        /// The device.
        device: DeviceId,
        /// How.
        pick: Box<Pick>,
    },
    /// Refused, with the reason.
    Refused(FlowError),
}

/// Random values a machine may need to take the next step (machines draw no random
/// numbers themselves). Unused ones cost nothing: nothing is stored unless a transition
/// names them.
#[derive(Debug, Clone)]
pub struct Fresh {
    /// A request id for a follow-up push (after a silent push).
    pub auth_id: AuthId,
    /// A pairing key for a new device a primary just admitted.
    pub pairing: Option<PairingOffer>,
}

/// What policy decided when the browser arrived (`authenticate {}`), read by the service
/// and applied by the kind's machine: each kind starts its second factor from it.
#[derive(Debug, Clone)]
pub enum Entry {
    /// An out-of-band flow: the devices offered, the methods still to set up, and what
    /// the service found out (network, skip window, the device picked at once).
    Oob {
        /// The devices offered under policy.
        devices: Vec<DeviceSummary>,
        /// Mandatory methods the user lacks.
        enrolment: Option<Enrolment>,
        /// The rest of what policy decided.
        start: Box<oob::Start>,
    },
    /// A transaction approval: the signing devices offered, and the one picked at once.
    Transaction {
        /// The devices offered under policy.
        devices: Vec<DeviceSummary>,
        /// What the network rules say.
        network: Option<NetworkAction>,
        /// Deny rules exist but the federation server sent no address.
        address_required: bool,
        /// The only usable device, reached (or refused) through policy.
        first: Option<FirstPick>,
    },
    /// A registration: the pairing key to show.
    Registration {
        /// What the network rules say.
        network: Option<NetworkAction>,
        /// The key.
        pairing: PairingOffer,
    },
    /// A new device's admission: by the primary (the devices narrowed to it) or at once.
    NewDevice {
        /// The primary, when it verifies the new device.
        devices: Option<Vec<DeviceSummary>>,
        /// What the network rules say.
        network: Option<NetworkAction>,
        /// How the new device is admitted.
        admission: new_device::Admission,
    },
    /// A QR sign-on: the first code to show.
    Qr {
        /// What the network rules say.
        network: Option<NetworkAction>,
        /// The flow's codes: its secret and its short-code handle.
        codes: qr::QrCodes,
    },
    /// A passwordless sign-in: the discoverable challenge to show.
    Passwordless {
        /// What the network rules say.
        network: Option<NetworkAction>,
        /// The ceremony: no credential named, the person verified.
        sign_in: Box<WebauthnSignIn>,
    },
}

/// A native app not trusted yet that entered a flow with its new key (self-signed): the
/// flow continues as a new device's admission (seed 004's "OOB from mobile").
#[derive(Debug, Clone)]
pub struct AppArrival {
    /// The key the app proved it holds; only a pairing with this key completes the flow.
    pub key: PublicDeviceKey,
    /// The primary, when it verifies the new device.
    pub devices: Option<Vec<DeviceSummary>>,
    /// What the network rules say.
    pub network: Option<NetworkAction>,
    /// How the new device is admitted.
    pub admission: new_device::Admission,
    /// The one-time challenge `serverPayload` carries.
    pub nonce: String,
}

/// Something that happens to a flow.
#[derive(Debug, Clone)]
pub enum Event {
    /// `authenticate {}`: a browser is on the page; the kind applies policy and reaches
    /// the person (the push or the code is an effect of this transition).
    Authenticate(Box<Entry>),
    /// `authenticate {mobilePayload}` from a trusted device of the flow's user: done, with
    /// no interaction (device authorization), unless the network refuses.
    AppAuthorized {
        /// The device.
        device: DeviceSummary,
        /// What the network rules say.
        network: Option<NetworkAction>,
    },
    /// `authenticate {mobilePayload}` from an app not trusted yet.
    AppArrived(Box<AppArrival>),
    /// The person picked a device (or retries after a time-out).
    SelectDevice {
        /// The device.
        device: DeviceId,
        /// How it is reached.
        pick: Pick,
    },
    /// The passcode was sent again.
    CodeResent {
        /// The new code.
        sent: SentCode,
        /// The message carrying it.
        message: Message,
    },
    /// A passcode was checked: right or wrong.
    OtpChecked {
        /// The device it came from.
        device: DeviceId,
        /// Whether it was right. A sent code is compared with the flow's own copy of it
        /// (the event is derived from the very version the commit replaces, so a code
        /// is spent exactly once); a computed one had its time step spent.
        passed: bool,
        /// A pairing key to offer when the right code admits a new device.
        pairing: Option<PairingOffer>,
    },
    /// `setupMfa`: the person starts setting up the missing methods.
    SetupStarted,
    /// The person picked a method to pair.
    PairingMethodChosen {
        /// The method.
        method: crate::policy::Method,
        /// A new authenticator secret (TOTP).
        totp_secret: Option<String>,
        /// A pairing key (the mobile app).
        pairing: Option<PairingOffer>,
        /// A WebAuthn set-up ceremony: the creation options and its state.
        webauthn: Option<Box<WebauthnSetup>>,
    },
    /// The person gave the address to pair, and a code goes to it.
    TargetSubmitted {
        /// SMS, voice or email.
        method: crate::policy::Method,
        /// Phone number or email address.
        address: String,
        /// The code sent.
        sent: SentCode,
        /// The message carrying it.
        message: Message,
    },
    /// The code proving a new method was checked.
    ActivationChecked {
        /// Whether it was right.
        passed: bool,
        /// The device to save when it was.
        device: OtpDevice,
    },
    /// A WebAuthn assertion was checked.
    AssertionChecked {
        /// The authenticator asked.
        device: DeviceId,
        /// What it leads to.
        verdict: AssertionVerdict,
    },
    /// A passwordless sign-in's assertion was checked (and its owner found).
    PasskeyChecked(Box<passwordless::Verdict>),
    /// A new WebAuthn credential's attestation was checked.
    WebauthnActivationChecked {
        /// The device to save, when it verified.
        device: Option<OtpDevice>,
        /// When it did not: a new ceremony to try again with (a challenge answers once).
        retry: Option<Box<WebauthnSetup>>,
    },
    /// The person managed their devices while choosing one.
    DevicesChanged {
        /// The device list now.
        devices: Vec<DeviceSummary>,
    },
    /// A device answered a request: its proof, verified.
    DeviceAnswered {
        /// The answer.
        answer: DeviceAnswer,
        /// Fresh values the machine may need (a follow-up request, a pairing key).
        fresh: Fresh,
    },
    /// A push could not be delivered; the app's own passcode may stand in.
    PushUndelivered {
        /// The request that failed.
        auth_id: AuthId,
    },
    /// The browser moves on after `MFA_COMPLETED`.
    Continue,
    /// The person gives up.
    Cancel,
    /// The federation server takes the result (once).
    PickUp,
    /// A trusted device signed the flow's challenge.
    DeviceAuthorized {
        /// The device.
        device: DeviceSummary,
        /// The nonce it signed.
        nonce: String,
    },
    /// A device was paired with the flow's pairing key.
    DevicePaired {
        /// The new device.
        device: DeviceSummary,
    },
    /// A device was unpaired: a request waiting on it can no longer be answered.
    DeviceUnpaired {
        /// The device.
        device: DeviceId,
    },
    /// A trusted device scanned the QR code.
    QrScanned {
        /// The device.
        device: DeviceId,
        /// The step of the code it read (the service checked the code's MAC for it).
        step: u64,
        /// Its users.
        users: Vec<UserId>,
        /// How long the person has to pick a user.
        selection_ms: u64,
    },
    /// The person picked who signs in, on the device that scanned.
    QrUserSelected {
        /// The device.
        device: DeviceSummary,
        /// The user.
        user: UserId,
        /// The step of the code presented again (a selection must come from the scan).
        step: Option<u64>,
        /// A silent push then an approval (policy), with this request id.
        verify_with: Option<AuthId>,
    },
    /// The relying party asks for tokens (CIBA poll or ping mode, and push delivery).
    TokenRequested,
}

impl Event {
    /// A name for error messages.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Authenticate(_) | Self::AppAuthorized { .. } | Self::AppArrived(_) => {
                "authenticate"
            }
            Self::SelectDevice { .. } => "selectDevice",
            Self::CodeResent { .. } => "resend",
            Self::OtpChecked { .. } | Self::ActivationChecked { .. } => "checkOtp",
            Self::WebauthnActivationChecked { .. } => "webauthn activation",
            Self::AssertionChecked {
                verdict: AssertionVerdict::Cloned,
                ..
            } => "cloned authenticator refused",
            Self::PasskeyChecked(verdict) if **verdict == passwordless::Verdict::Cloned => {
                "cloned authenticator refused"
            }
            Self::AssertionChecked { .. } | Self::PasskeyChecked(_) => "checkAssertion",
            Self::SetupStarted => "setupMfa",
            Self::PairingMethodChosen { .. } => "selectDevicePairingMethod",
            Self::TargetSubmitted { .. } => "submitTarget",
            Self::DevicesChanged { .. } => "device management",
            Self::DeviceAnswered { .. } => "device decision",
            Self::PushUndelivered { .. } => "push fallback",
            Self::Continue => "continueAuthentication",
            Self::Cancel => "cancelAuthentication",
            Self::PickUp => "result pickup",
            Self::DeviceAuthorized { .. } => "authenticate",
            Self::DevicePaired { .. } => "device pairing",
            Self::DeviceUnpaired { .. } => "device unpairing",
            Self::QrScanned { .. } => "QR scan",
            Self::QrUserSelected { .. } => "QR user selection",
            Self::TokenRequested => "token request",
        }
    }
}

/// The flow after `event`, by its kind's machine.
pub fn apply(flow: &Flow, event: Event, ctx: &Context) -> Result<Transition, FlowError> {
    match flow.state() {
        FlowState::Oob(state) => oob::apply(flow, state, event, ctx),
        FlowState::Transaction(state) => transaction::apply(flow, state, event, ctx),
        FlowState::Ciba(state) => ciba::apply(flow, state, event, ctx),
        FlowState::Registration(state) => registration::apply(flow, state, event, ctx),
        FlowState::DeviceAuthorization(state) => {
            device_authorization::apply(flow, state, event, ctx)
        }
        FlowState::Qr(state) => qr::apply(flow, state, event, ctx),
        FlowState::NewDevice(state) => new_device::apply(flow, state, event, ctx),
        FlowState::Passwordless(state) => passwordless::apply(flow, state, event, ctx),
    }
}
