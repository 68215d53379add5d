//! QR code sign-on against the store: a fresh code for the page, renewed on the browser's
//! poll once expired; the trusted device's scan; the person's pick on a shared device.
//! The machine is [`super::qr`].

use super::service::summaries;
use super::{Event, Flow, FlowKind, FlowState};
use crate::device::{self, Device};
pub use assent_proto::device::{QrOutcome, QrStatus, QrUser};

use crate::error::{AdapterError, FlowError};
use crate::ids::{AuthId, FlowId, random_alphanumeric};
use crate::user::UserId;
use crate::{Adapter, user};

/// The flow a QR token names (`<flowId>.<secret>`).
fn token_flow(token: &str) -> Result<FlowId, AdapterError> {
    token
        .split_once('.')
        .and_then(|(flow, _)| FlowId::parse(flow))
        .ok_or(AdapterError::NotFound("QR code"))
}

/// A QR machine's refusal, in the Device API's terms.
fn refusal(error: AdapterError) -> AdapterError {
    match error {
        AdapterError::Flow(FlowError::QrCodeUnknown) => AdapterError::NotFound("QR code"),
        AdapterError::Flow(
            refused @ (FlowError::QrCodeUsed
            | FlowError::QrCodeExpired
            | FlowError::QrSelectionClosed(_)
            | FlowError::NotPending),
        ) => AdapterError::Conflict(match refused {
            FlowError::NotPending => "the QR code was already used".to_owned(),
            other => other.to_string(),
        }),
        AdapterError::Flow(FlowError::QrOtherDevice) => {
            AdapterError::Forbidden("another device scanned this code")
        }
        AdapterError::Flow(FlowError::QrUserNotPaired) => {
            AdapterError::Invalid("that user is not paired with this device".to_owned())
        }
        other => other,
    }
}

impl Adapter {
    /// A new code for `flow`: its token and expiry.
    pub(crate) fn fresh_qr_code(&self, flow: &FlowId, now: u64) -> (String, u64) {
        (
            format!("{flow}.{}", random_alphanumeric(24)),
            now + self.config().policy.qr_token_ttl_secs * 1000,
        )
    }

    /// What the QR code encodes.
    pub fn qr_uri(&self, token: &str) -> String {
        format!(
            "{}://assent?authentication_token={token}",
            self.config().policy.qr_app_scheme
        )
    }

    /// Replaces an expired code (on the browser's poll).
    pub(crate) async fn renew_qr_code(&self, flow: &Flow) -> Result<Flow, AdapterError> {
        let (token, expires_at_ms) = self.fresh_qr_code(&flow.id, self.clock().now_ms());
        let renewed = Event::QrRenewed {
            token,
            expires_at_ms,
        };
        match self
            .update_flow(&flow.id, None, |_| Ok(renewed.clone()))
            .await
        {
            // Renewed meanwhile, or scanned: the current state is what the page shows.
            Err(AdapterError::Flow(FlowError::NotPending)) => self.load_flow(&flow.id).await,
            other => other,
        }
    }

    /// One event on a QR flow.
    async fn qr_step(&self, id: &FlowId, event: Event) -> Result<Flow, AdapterError> {
        let (flow, version) = self.load_any(id).await?;
        if flow.kind() != FlowKind::Qr {
            return Err(AdapterError::NotFound("QR code"));
        }
        self.update_flow(id, Some((flow, version)), |_| Ok(event.clone()))
            .await
            .map_err(refusal)
    }

    /// A trusted device scanned a code: once, before it expires.
    pub async fn scan_qr(&self, device: &Device, token: &str) -> Result<QrOutcome, AdapterError> {
        let flow_id = token_flow(token)?;
        let users: Vec<UserId> = device.users().cloned().collect();
        let scanned = Event::QrScanned {
            device: device.id.clone(),
            token: token.to_owned(),
            users: users.clone(),
            selection_ms: self.config().policy.push_timeout_secs * 1000,
        };
        let flow = self.qr_step(&flow_id, scanned).await?;
        match users.as_slice() {
            [only] => self.select_qr_user(device, &flow.id, only, None).await,
            _ => {
                let mut listed = Vec::new();
                for id in &users {
                    let username = user::find(self.store(), id)
                        .await?
                        .map_or_else(|| id.to_string(), |profile| profile.username);
                    listed.push(QrUser {
                        id: id.to_string(),
                        username,
                    });
                }
                Ok(QrOutcome {
                    status: QrStatus::UserSelectionRequired,
                    application_name: flow.application.name.clone(),
                    users: listed,
                })
            }
        }
    }

    /// The person picked a user on the shared device that scanned the code.
    pub async fn select_qr_user_by_token(
        &self,
        device: &Device,
        token: &str,
        user: &str,
    ) -> Result<QrOutcome, AdapterError> {
        let flow_id = token_flow(token)?;
        let user = UserId::parse(user).map_err(AdapterError::Invalid)?;
        self.select_qr_user(device, &flow_id, &user, Some(token))
            .await
    }

    async fn select_qr_user(
        &self,
        device: &Device,
        flow_id: &FlowId,
        user: &UserId,
        token: Option<&str>,
    ) -> Result<QrOutcome, AdapterError> {
        let approval_needed = self.config().policy.qr_user_approval;
        let default = device::default_for_user(self.store(), user).await?;
        let summary = summaries(std::slice::from_ref(device), default.as_ref()).remove(0);
        let selected = Event::QrUserSelected {
            device: summary,
            user: user.clone(),
            token: token.map(str::to_owned),
            verify_with: approval_needed.then(|| AuthId::generate(flow_id)),
        };
        let flow = self.qr_step(flow_id, selected).await?;
        let status = match flow.state() {
            FlowState::Qr(super::qr::State::PushWaiting { .. }) => {
                QrStatus::PushConfirmationWaiting
            }
            _ => QrStatus::Completed,
        };
        Ok(QrOutcome {
            status,
            application_name: flow.application.name.clone(),
            users: Vec::new(),
        })
    }
}
