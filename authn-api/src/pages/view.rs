//! What a page shows, built from the typed Authentication API state (the same one the JSON
//! API answers) and the flow's head (the transaction and where the browser returns to).

use assent_core::flow::{Flow, FlowKind};
use assent_proto::authn::{ActionId, AuthenticationCode, AuthnState, Device, Status};
use chrono::Timelike;
use serde::Serialize;

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

fn label(device: &Device) -> String {
    device
        .nickname
        .clone()
        .filter(|nickname| !nickname.trim().is_empty())
        .unwrap_or_else(|| device.name.clone())
}

/// The page for `state` of `flow`, in `lang`, with the form token `csrf`.
pub fn page(state: &AuthnState, flow: &Flow, lang: &'static str, csrf: String) -> PageView {
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
        _ => ("other.html", "other-heading"),
    };
    let selected = state.status.selected_device_id();
    let devices = state
        .status
        .devices()
        .iter()
        .filter(|device| device.usable)
        .map(|device| DeviceView {
            id: device.id.clone(),
            label: label(device),
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
        text: heading.replace("-heading", "-text"),
        flow_id: state.id.clone(),
        status: serde_json::to_value(state.status.name())
            .ok()
            .and_then(|name| name.as_str().map(str::to_owned))
            .unwrap_or_default(),
        poll: state.offers(ActionId::Poll),
        csrf,
        app: flow.application.name.clone(),
        devices,
        device: state.status.device().map(label),
        device_id: state.status.selected_device_id().map(str::to_owned),
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
    }
}
