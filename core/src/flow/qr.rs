//! QR code sign-on (seed 004): the page shows a code carrying a one-time token; a trusted
//! device scans it; a shared device lets the person pick which of its users they are; the
//! flow completes as that user, after their approval on the device when policy asks.

use serde::Serialize;
use subtle::ConstantTimeEq;

use super::service::{now_ms, summaries};
use super::{Approval, Event, Flow, FlowKind, FlowState, apply};
use crate::device::{self, Device};
use crate::error::{AdapterError, FlowError};
use crate::ids::{AuthId, FlowId, random_alphanumeric};
use crate::user::UserId;
use crate::{Adapter, user};

/// What the scanning device is told.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct QrOutcome {
    /// `USER_SELECTION_REQUIRED`, `PUSH_CONFIRMATION_WAITING` or `COMPLETED`.
    pub status: &'static str,
    /// The application signed in to.
    pub application_name: String,
    /// The users to choose from (a shared device).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub users: Vec<QrUser>,
}

/// A user a shared device can sign in as.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct QrUser {
    /// The user id to select.
    pub id: String,
    /// Their login name.
    pub username: String,
}

fn secret_matches(expected: &str, presented: &str) -> bool {
    bool::from(expected.as_bytes().ct_eq(presented.as_bytes()))
}

impl Adapter {
    /// A new code for `flow`.
    pub(crate) fn fresh_qr_code(&self, flow: &FlowId, now: u64) -> FlowState {
        FlowState::QrCodeShown {
            token: format!("{flow}.{}", random_alphanumeric(24)),
            expires_at_ms: now + self.config().policy.qr_token_ttl_secs * 1000,
        }
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
        let now = now_ms();
        let fresh = self.fresh_qr_code(&flow.id, now);
        let (flow, ()) = self
            .step_flow(&flow.id, None, |current| match &current.state {
                FlowState::QrCodeShown { expires_at_ms, .. }
                | FlowState::QrUserSelection { expires_at_ms, .. }
                    if *expires_at_ms <= now =>
                {
                    let mut next = current.clone();
                    next.state = fresh.clone();
                    Ok((next, ()))
                }
                _ => Ok((current.clone(), ())),
            })
            .await?;
        Ok(flow)
    }

    /// A trusted device scanned a code: once, before it expires.
    pub async fn scan_qr(&self, device: &Device, token: &str) -> Result<QrOutcome, AdapterError> {
        let flow_id = token
            .split_once('.')
            .and_then(|(flow, _)| FlowId::parse(flow))
            .ok_or(AdapterError::NotFound("QR code"))?;
        let users: Vec<UserId> = device.users().cloned().collect();
        let now = now_ms();
        let selection_window = self.config().policy.push_timeout_secs * 1000;
        let flow = self
            .qr_step(&flow_id, |flow| {
                let FlowState::QrCodeShown {
                    token: expected,
                    expires_at_ms,
                } = &flow.state
                else {
                    return Err(AdapterError::Conflict(
                        "the QR code was already used".to_owned(),
                    ));
                };
                if !secret_matches(expected, token) {
                    return Err(AdapterError::NotFound("QR code"));
                }
                if *expires_at_ms <= now {
                    return Err(AdapterError::Conflict("the QR code has expired".to_owned()));
                }
                let mut next = flow.clone();
                next.state = FlowState::QrUserSelection {
                    device: device.id.clone(),
                    users: users.clone(),
                    token: token.to_owned(),
                    expires_at_ms: now + selection_window,
                };
                Ok(next)
            })
            .await?;
        match users.as_slice() {
            [only] => self.select_qr_user(device, &flow, only).await,
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
                    status: "USER_SELECTION_REQUIRED",
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
        let flow_id = token
            .split_once('.')
            .and_then(|(flow, _)| FlowId::parse(flow))
            .ok_or(AdapterError::NotFound("QR code"))?;
        let user = UserId::parse(user).map_err(AdapterError::Invalid)?;
        let (flow, _) = self.load_any(&flow_id).await?;
        match &flow.state {
            FlowState::QrUserSelection { token: scanned, .. } if secret_matches(scanned, token) => {
            }
            FlowState::QrUserSelection { .. } => return Err(AdapterError::NotFound("QR code")),
            _ => {}
        }
        self.select_qr_user(device, &flow, &user).await
    }

    async fn select_qr_user(
        &self,
        device: &Device,
        flow: &Flow,
        user: &UserId,
    ) -> Result<QrOutcome, AdapterError> {
        let approval_needed = self.config().policy.qr_user_approval;
        let timeout_ms = self.config().policy.push_timeout_secs * 1000;
        let default = device::default_for_user(self.store(), user).await?;
        let summary = summaries(std::slice::from_ref(device), default.as_ref());
        let now = now_ms();
        let flow = self
            .qr_step(&flow.id, |flow| {
                let FlowState::QrUserSelection {
                    device: scanner,
                    users,
                    expires_at_ms,
                    ..
                } = &flow.state
                else {
                    return Err(AdapterError::Conflict(
                        "no user selection is waiting".to_owned(),
                    ));
                };
                if *scanner != device.id {
                    return Err(AdapterError::Forbidden("another device scanned this code"));
                }
                if *expires_at_ms <= now {
                    return Err(AdapterError::Conflict(
                        "the selection has expired".to_owned(),
                    ));
                }
                if !users.contains(user) {
                    return Err(AdapterError::Invalid(
                        "that user is not paired with this device".to_owned(),
                    ));
                }
                let mut next = flow.clone();
                next.user_id = user.clone();
                next.devices = summary.clone();
                if approval_needed {
                    next.state = FlowState::DeviceSelectionRequired;
                    let event = Event::SelectDevice {
                        device: device.id.clone(),
                        auth_id: AuthId::generate(&flow.id),
                        timeout_ms,
                        max_pushes: 1,
                        number_match: None,
                    };
                    let mut next = apply(&next, event, now)?;
                    // Extra verification: first a silent push the app answers with its
                    // key alone, then the person's approval.
                    if let FlowState::PushWaiting { push } = &mut next.state {
                        push.silent = true;
                    }
                    return Ok(next);
                }
                next.state = FlowState::Completed {
                    approval: Approval {
                        device_id: device.id.clone(),
                        method: "qr".to_owned(),
                        decided_at_ms: now,
                    },
                };
                Ok(next)
            })
            .await?;
        self.send_push(&flow).await?;
        Ok(QrOutcome {
            status: if approval_needed {
                "PUSH_CONFIRMATION_WAITING"
            } else {
                "COMPLETED"
            },
            application_name: flow.application.name.clone(),
            users: Vec::new(),
        })
    }

    /// One compare-and-set on a QR flow.
    async fn qr_step(
        &self,
        id: &FlowId,
        mut step: impl FnMut(&Flow) -> Result<Flow, AdapterError>,
    ) -> Result<Flow, AdapterError> {
        let (flow, ()) = self
            .step_flow(id, None, |flow| {
                if flow.kind != FlowKind::Qr {
                    return Err(AdapterError::NotFound("QR code"));
                }
                Ok((step(flow)?, ()))
            })
            .await
            .map_err(|error| match error {
                AdapterError::Flow(FlowError::NotPending) => {
                    AdapterError::Conflict("the QR code was already used".to_owned())
                }
                other => other,
            })?;
        Ok(flow)
    }
}
