//! What a page shows, built from the typed Authentication API state (the same one the JSON
//! API answers) and the flow's head (the transaction and where the browser returns to).

use assent_core::flow::{Flow, FlowKind};
use assent_proto::authn::{
    ActionId, AuthenticationCode, AuthnState, Device, DeviceType, Method, PairingType, QrImages,
    Status,
};
use chrono::Timelike;
use fluent_bundle::FluentArgs;
use serde::Serialize;

use assent_core::l10n::Catalog;

use super::webauthn::{self, WebauthnView};

/// The context of one page's template.
#[derive(Debug, Serialize)]
pub struct PageView {
    /// The template to render.
    #[serde(skip)]
    pub template: &'static str,
    /// The page's language.
    pub lang: &'static str,
    /// The message id of the page's heading (and title).
    pub heading: &'static str,
    /// The message id of the page's main text (the heading's, `-text` for `-heading`).
    pub text: String,
    /// The flow id, for the form actions and the polling script.
    pub flow_id: String,
    /// The status, which the polling script compares with the API's.
    pub status: String,
    /// Whether the script long polls for a change.
    pub poll: bool,
    /// The form token (see `security.rs`).
    pub csrf: String,
    /// The application signed in to.
    pub app: String,
    /// The devices to pick from.
    pub devices: Vec<DeviceView>,
    /// The device asked, as the person names it.
    pub device: Option<String>,
    /// The same device's id, for sending again.
    pub device_id: Option<String>,
    /// Number matching: the number to pick on the phone.
    pub number: Option<u8>,
    /// What a transaction flow asks to approve.
    pub transaction: Option<TransactionView>,
    /// QR sign-on: the code to scan, or that a phone scanned it.
    pub qr: Option<QrView>,
    /// The administrator's message.
    pub admin_message: Option<String>,
    /// Where the browser returns to, once done.
    pub return_url: Option<String>,
    /// The actions offered now, by their wire names.
    pub can: Can,
    /// What the passcode and set-up pages show.
    pub passcode: PasscodeView,
    /// What went wrong with the form just sent, shown above it.
    pub notice: Option<Notice>,
    /// The WebAuthn pages' ceremony.
    pub webauthn: Option<WebauthnView>,
}

/// The passcode and set-up pages' part of a page: the code, target and method forms.
#[derive(Debug, Default, Serialize)]
pub struct PasscodeView {
    /// Where the code went or comes from, masked (a phone number, an address, a device).
    pub target: Option<String>,
    /// Digits the code has.
    pub otp_length: Option<u32>,
    /// Whether the code is a YubiKey's: letters the key types itself, then Enter.
    pub otp_letters: bool,
    /// The action a code is posted with (`checkOtp`, `activateSmsDevice`...), if offered.
    pub code_action: Option<&'static str>,
    /// The action that sends a new code (`resend` or `resendOtp`), if offered.
    pub resend_action: Option<&'static str>,
    /// The action a phone number or email address is posted with, if offered.
    pub target_action: Option<&'static str>,
    /// Whether that target is an email address (else a phone number).
    pub email: bool,
    /// `setupMfa`, if offered.
    pub setup: bool,
    /// The methods to set up, or to choose from when `choose` is set.
    pub methods: Vec<MethodView>,
    /// Whether the person picks one of `methods` (`selectDevicePairingMethod`).
    pub choose: bool,
    /// Whether the person may skip setting up.
    pub allow_skip: bool,
    /// A key to scan: an `<img src>` data URI.
    pub qr: Option<String>,
    /// The same key as text, for typing in.
    pub key: Option<String>,
}

/// A method to set up.
#[derive(Debug, Serialize)]
pub struct MethodView {
    /// The form's value: the wire's `deviceType`.
    pub value: &'static str,
    /// The message id of its name.
    pub label: &'static str,
}

/// Why the form just sent was not taken: a message id, and the code attempts left.
#[derive(Debug, Serialize)]
pub struct Notice {
    /// The message id.
    pub message: &'static str,
    /// Attempts left, after a wrong code.
    pub attempts: Option<u32>,
}

/// The actions a page offers: exactly those of the state's `_links`.
#[derive(Debug, Default, Serialize)]
pub struct Can {
    /// `authenticate`
    pub authenticate: bool,
    /// `selectDevice`
    pub select_device: bool,
    /// `continueAuthentication`
    pub continue_authentication: bool,
    /// `cancelAuthentication`
    pub cancel: bool,
}

/// A device as a page lists it.
#[derive(Debug, Serialize)]
pub struct DeviceView {
    /// Its id, the form's value.
    pub id: String,
    /// The person's name for it, else the app's.
    pub label: String,
    /// The model, or the masked number or address.
    pub target: String,
    /// The user's default.
    pub default: bool,
    /// The one selected now.
    pub selected: bool,
}

/// A transaction's title, body and parameters.
#[derive(Debug, Serialize)]
pub struct TransactionView {
    /// Short title.
    pub title: String,
    /// The body.
    pub body: String,
    /// The dynamic parameters, by name.
    pub params: Vec<(String, String)>,
}

/// A QR sign-on's code as a page shows it: none of it once a phone scanned it.
#[derive(Debug, Serialize)]
pub struct QrView {
    /// The QR image, an SVG `data:` URI.
    pub image: Option<String>,
    /// The short code to type when the camera cannot scan; empty once scanned. The
    /// polling script compares it with the API's, so that a new code or a scan (the
    /// status stays the same) shows a new page.
    pub code: String,
    /// When the code stops working, RFC 3339 (the `<time>` element's `datetime`).
    pub expires: Option<String>,
    /// The same, as people read it.
    pub expires_text: Option<String>,
    /// Whether a phone scanned the code and the person now picks an account on it.
    pub claimed: bool,
}

impl QrView {
    fn of(code: &AuthenticationCode) -> Self {
        Self {
            image: code.qr_code.as_ref().map(|images| images.svg.clone()),
            code: code.code.clone().unwrap_or_default(),
            // As the JSON API writes it (RFC 3339).
            expires: code
                .expires_at
                .and_then(|at| serde_json::to_value(at).ok())
                .and_then(|at| at.as_str().map(str::to_owned)),
            expires_text: code
                .expires_at
                .map(|at| format!("{:02}:{:02}:{:02} UTC", at.hour(), at.minute(), at.second())),
            claimed: code.claimed,
        }
    }
}

fn method_label(method: PairingType) -> &'static str {
    match method {
        PairingType::Mobile => "method-mobile",
        PairingType::Sms => "method-sms",
        PairingType::Voice => "method-voice",
        PairingType::Email => "method-email",
        PairingType::Totp => "method-totp",
        PairingType::SecurityKey => "method-security-key",
        PairingType::Platform => "method-platform",
    }
}

/// How a method is set up; `None` for imported hardware tokens, which never are.
fn pairing_type(method: Method) -> Option<PairingType> {
    Some(match method {
        Method::PingidMobile => PairingType::Mobile,
        Method::Sms => PairingType::Sms,
        Method::Voice => PairingType::Voice,
        Method::Email => PairingType::Email,
        Method::Totp => PairingType::Totp,
        Method::SecurityKey => PairingType::SecurityKey,
        Method::Platform => PairingType::Platform,
        Method::Yubikey | Method::OathToken => return None,
    })
}

fn method_view(method: PairingType) -> MethodView {
    MethodView {
        value: method.as_str(),
        label: method_label(method),
    }
}

/// The first of `actions` the state offers, by its wire name.
fn offered(state: &AuthnState, actions: &[ActionId]) -> Option<&'static str> {
    actions
        .iter()
        .find(|action| state.offers(**action))
        .map(|action| action.as_str())
}

fn qr(images: Option<&QrImages>) -> Option<String> {
    images.map(|images| images.svg.clone())
}

/// The passcode and set-up part of `state`'s page.
fn passcode(state: &AuthnState) -> PasscodeView {
    let code_action = offered(
        state,
        &[
            ActionId::CheckOtp,
            ActionId::ActivateSmsDevice,
            ActionId::ActivateVoiceDevice,
            ActionId::ActivateEmailDevice,
            ActionId::ActivateTotpDevice,
        ],
    );
    let mut view = PasscodeView {
        resend_action: offered(state, &[ActionId::Resend, ActionId::ResendOtp]),
        target_action: offered(
            state,
            &[
                ActionId::SubmitSmsTarget,
                ActionId::SubmitVoiceTarget,
                ActionId::SubmitEmailTarget,
            ],
        ),
        email: state.offers(ActionId::SubmitEmailTarget),
        setup: state.offers(ActionId::SetupMfa),
        choose: state.offers(ActionId::SelectDevicePairingMethod),
        ..PasscodeView::default()
    };
    match &state.status {
        Status::OtpRequired(fields) => {
            view.code_action = code_action;
            view.target = fields.device.as_ref().map(|device| device.target.clone());
            view.otp_length = Some(fields.otp_length);
            view.otp_letters = fields
                .device
                .as_ref()
                .is_some_and(|device| device.device_type == DeviceType::Yubikey);
        }
        Status::SmsActivationRequired(fields) | Status::VoiceActivationRequired(fields) => {
            view.code_action = code_action;
            view.target = fields.phone.clone();
            view.otp_length = Some(fields.otp_length);
        }
        Status::EmailActivationRequired(fields) => {
            view.code_action = code_action;
            view.target = fields.email.clone();
            view.otp_length = Some(fields.otp_length);
        }
        Status::TotpActivationRequired(fields) => {
            view.code_action = code_action;
            view.otp_length = Some(fields.otp_length);
            view.qr = qr(fields.qr_code.as_ref());
            view.key = Some(fields.pairing_key.clone());
        }
        Status::MobileActivationRequired(fields) => {
            view.qr = qr(fields.qr_code.as_ref());
            view.key = Some(fields.pairing_key.clone());
        }
        Status::MfaSetupRequired(fields) => {
            view.allow_skip = fields.allow_skip_mfa;
            view.methods = fields
                .required_methods
                .iter()
                .filter_map(|method| pairing_type(*method).map(method_view))
                .collect();
        }
        Status::DevicePairingMethodRequired(fields) => {
            view.methods = fields
                .device_pairing_methods
                .iter()
                .map(|method| method_view(method.device_type))
                .collect();
        }
        _ => {}
    }
    view
}

/// The text of the passcode page: how the code reaches the person.
fn otp_text(device: Option<&Device>) -> &'static str {
    match device.map(|device| device.device_type) {
        Some(DeviceType::Sms) => "otp-sms-text",
        Some(DeviceType::Voice) => "otp-voice-text",
        Some(DeviceType::Email) => "otp-email-text",
        _ => "otp-app-text",
    }
}

/// A device as the person knows it: their nickname; else, for a passcode method or a
/// WebAuthn authenticator, its name in the page's language (the API's `name` is English);
/// else the model the app reported.
fn label(device: &Device, lang: &str, catalog: &Catalog) -> String {
    if let Some(nickname) = device
        .nickname
        .as_ref()
        .filter(|nickname| !nickname.trim().is_empty())
    {
        return nickname.clone();
    }
    let method = match device.device_type {
        DeviceType::Sms => "device-sms",
        DeviceType::Voice => "device-voice",
        DeviceType::Email => "device-email",
        DeviceType::Totp => "device-totp",
        DeviceType::Yubikey => "device-yubikey",
        DeviceType::OathToken => "device-oath",
        DeviceType::SecurityKey => "device-security-key",
        DeviceType::Platform => "device-platform",
        _ => return device.name.clone(),
    };
    let named = catalog.format(lang, method, &FluentArgs::new());
    let named = if device.backup {
        named.and_then(|method| {
            let mut args = FluentArgs::new();
            args.set("method", method);
            catalog.format(lang, "device-backup", &args)
        })
    } else {
        named
    };
    named.unwrap_or_else(|| device.name.clone())
}

/// The page for `state` of `flow`, in `lang`, with the form token `csrf`.
pub fn page(
    state: &AuthnState,
    flow: &Flow,
    lang: &'static str,
    csrf: String,
    notice: Option<Notice>,
    catalog: &Catalog,
) -> PageView {
    let qr_flow = flow.kind() == FlowKind::Qr;
    let (template, heading) = match &state.status {
        // A QR sign-on sends nothing to a device: its start says what comes instead.
        Status::AuthenticationRequired if qr_flow => ("qr_start.html", "qr-start-heading"),
        Status::AuthenticationRequired => ("start.html", "start-heading"),
        Status::AuthenticationCodeResponseRequired(code) if code.claimed => {
            ("qr.html", "qr-claimed-heading")
        }
        Status::AuthenticationCodeResponseRequired(_) => ("qr.html", "qr-heading"),
        Status::DeviceSelectionRequired(_) => ("select.html", "select-heading"),
        Status::PushConfirmationWaiting(_) => ("waiting.html", "waiting-heading"),
        Status::PushConfirmationTimedOut(_) => ("retry.html", "timed-out-heading"),
        Status::PushConfirmationRejected(_) => ("retry.html", "rejected-heading"),
        Status::MfaCompleted => ("completed.html", "completed-heading"),
        Status::Completed(_) | Status::Resume(_) => ("done.html", "done-heading"),
        Status::MfaFailed(_) | Status::Failed(_) => ("ended.html", "failed-heading"),
        Status::Canceled(_) => ("ended.html", "canceled-heading"),
        Status::OtpRequired(_) => ("passcode.html", "otp-heading"),
        Status::SmsActivationRequired(_) => ("passcode.html", "sms-activation-heading"),
        Status::VoiceActivationRequired(_) => ("passcode.html", "voice-activation-heading"),
        Status::EmailActivationRequired(_) => ("passcode.html", "email-activation-heading"),
        Status::TotpActivationRequired(_) => ("totp.html", "totp-heading"),
        Status::MfaSetupRequired(_) => ("setup.html", "setup-heading"),
        Status::DevicePairingMethodRequired(_) => ("setup.html", "pairing-method-heading"),
        Status::SmsPairingTargetRequired => ("target.html", "sms-target-heading"),
        Status::VoicePairingTargetRequired => ("target.html", "voice-target-heading"),
        Status::EmailPairingTargetRequired => ("target.html", "email-target-heading"),
        Status::MobileActivationRequired(_) => ("mobile.html", "mobile-activation-heading"),
        Status::SecurityKeyActivationRequired(_) => {
            ("webauthn.html", "security-key-activation-heading")
        }
        Status::PlatformActivationRequired(_) => ("webauthn.html", "platform-activation-heading"),
        // Passwordless: no authenticator named, any passkey of the person's answers.
        Status::AssertionRequired(fields) if fields.selected_device_ref.is_none() => {
            ("webauthn.html", "passkey-heading")
        }
        Status::AssertionRequired(_) => ("webauthn.html", "assertion-heading"),
        _ => ("other.html", "other-heading"),
    };
    let text = match &state.status {
        Status::OtpRequired(fields) => otp_text(fields.device.as_ref()).to_owned(),
        _ => heading.replace("-heading", "-text"),
    };
    // ASSERTION_REQUIRED lists the user's devices and names the authenticator asked.
    let (listed, selected, asked) = match &state.status {
        Status::AssertionRequired(fields) => {
            let selected = fields
                .selected_device_ref
                .as_ref()
                .map(|selected| selected.id.as_str());
            let asked = fields
                .devices
                .iter()
                .find(|device| Some(device.id.as_str()) == selected);
            (&fields.devices[..], selected, asked)
        }
        status => (
            status.devices(),
            status.selected_device_id(),
            status.device(),
        ),
    };
    let devices = listed
        .iter()
        .filter(|device| device.usable)
        .map(|device| DeviceView {
            id: device.id.clone(),
            label: label(device, lang, catalog),
            target: device.target.clone(),
            default: device.default,
            selected: selected == Some(device.id.as_str()),
        })
        .collect();
    let number = match &state.status {
        Status::PushConfirmationWaiting(fields) => fields.number_match,
        _ => None,
    };
    let transaction = (flow.kind() == FlowKind::Transaction).then(|| TransactionView {
        title: flow.message.title.clone(),
        body: flow.message.body.clone(),
        params: flow
            .params
            .as_map()
            .iter()
            .map(|(name, value)| (name.clone(), value.clone()))
            .collect(),
    });
    let qr = match &state.status {
        Status::AuthenticationCodeResponseRequired(code) => Some(QrView::of(code)),
        _ => None,
    };
    // Done: where the done page sends the browser on to. Ended: a way back, so the
    // federation server hears of the failure rather than waiting for its sign-in to expire.
    let return_url = match &state.status {
        Status::Resume(resume) => Some(resume.resume_url.clone()),
        Status::MfaFailed(_) | Status::Failed(_) | Status::Canceled(_) => flow.return_url.clone(),
        _ => None,
    };
    PageView {
        template,
        lang,
        heading,
        text,
        flow_id: state.id.clone(),
        status: serde_json::to_value(state.status.name())
            .ok()
            .and_then(|name| name.as_str().map(str::to_owned))
            .unwrap_or_default(),
        poll: state.offers(ActionId::Poll),
        csrf,
        app: flow.application.name.clone(),
        devices,
        device: asked.map(|device| label(device, lang, catalog)),
        device_id: selected.map(str::to_owned),
        number,
        transaction,
        qr,
        admin_message: state.admin_message.clone(),
        return_url,
        can: Can {
            authenticate: state.offers(ActionId::Authenticate),
            select_device: state.offers(ActionId::SelectDevice),
            continue_authentication: state.offers(ActionId::ContinueAuthentication),
            cancel: state.offers(ActionId::CancelAuthentication),
        },
        passcode: passcode(state),
        webauthn: webauthn::view(state, notice.is_some()),
        notice,
    }
}
