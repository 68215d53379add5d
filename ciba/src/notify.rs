//! Ping and push delivery (CIBA §10.2, §10.3, §12): after the device's decision, POST to
//! the client's notification endpoint with its bearer token, retried with backoff, never
//! holding up the device's request.

use std::sync::{Arc, Weak};
use std::time::Duration;

use assent_core::config::DeliveryMode;
use assent_core::flow::ciba::Grant;
use assent_core::flow::{DecisionHook, Flow, FlowKind};
use assent_proto::ciba::{ErrorCode, PingNotification, PushNotification};
use serde::Serialize;

use crate::Provider;

/// The first retry's delay; each further one doubles it.
const FIRST_BACKOFF: Duration = Duration::from_millis(250);

/// The hook the adapter calls after a decision; holds the provider weakly.
pub struct Notifier(pub Weak<Provider>);

impl DecisionHook for Notifier {
    fn decided(&self, flow: &Flow) {
        let Some(provider) = self.0.upgrade() else {
            return;
        };
        let Some(request) = &flow.ciba else {
            return;
        };
        if flow.kind() != FlowKind::Ciba || request.delivery_mode == DeliveryMode::Poll {
            return;
        }
        let flow = flow.clone();
        tokio::spawn(async move { provider.notify(flow).await });
    }
}

impl Provider {
    async fn notify(self: Arc<Self>, flow: Flow) {
        let Some(request) = &flow.ciba else {
            return;
        };
        let mode = request.delivery_mode;
        let Some(client) = self.client(&request.client_id) else {
            return;
        };
        let (Some(endpoint), Some(token)) =
            (&client.notification_endpoint, &request.notification_token)
        else {
            return;
        };
        let delivered = match mode {
            DeliveryMode::Ping => {
                let ping = PingNotification {
                    auth_req_id: flow.id.to_string(),
                };
                self.deliver(endpoint, token, &ping).await
            }
            DeliveryMode::Push => match self.push_body(&flow).await {
                Some(push) => self.deliver(endpoint, token, &push).await,
                None => return,
            },
            DeliveryMode::Poll => return,
        };
        let outcome = if delivered { "delivered" } else { "failed" };
        self.metrics
            .notifications
            .with_label_values(&[mode.as_str(), outcome])
            .inc();
        if !delivered {
            tracing::warn!(client = %client.id, mode = mode.as_str(), "CIBA notification not delivered");
        }
    }

    /// The push payload: the tokens (redeemed here, once), or the error.
    async fn push_body(&self, flow: &Flow) -> Option<PushNotification> {
        let auth_req_id = flow.id.as_str();
        let error = |error, why: &str| {
            Some(PushNotification::Error {
                auth_req_id: auth_req_id.to_owned(),
                error,
                error_description: why.to_owned(),
            })
        };
        if flow.status(self.adapter.clock().now_ms())
            == assent_core::flow::Status::PushConfirmationRejected
        {
            return error(ErrorCode::AccessDenied, "the user denied the request");
        }
        let request = flow.ciba.as_ref()?;
        let client = self.client(&request.client_id)?;
        let failed = |why: &str| error(ErrorCode::TransactionFailed, why);
        match self.adapter.ciba_token(auth_req_id, &client.id).await {
            Ok((redeemed, Grant::Approved)) => {
                let Some(auth) = Self::approved(&redeemed, true) else {
                    return failed("approved without approval");
                };
                match self.mint(client, &auth).await {
                    Ok(tokens) => Some(PushNotification::Tokens {
                        auth_req_id: auth_req_id.to_owned(),
                        tokens,
                    }),
                    Err(_) => failed("tokens could not be issued"),
                }
            }
            // Redeemed already: another delivery owns it.
            Err(assent_core::AdapterError::Flow(
                assent_core::error::FlowError::AlreadyPickedUp,
            )) => None,
            // A push client cannot poll: it must hear that the transaction failed.
            Ok(_) | Err(_) => failed("the approved request could not be redeemed"),
        }
    }

    /// POSTs `body` with bounded retries; true once the client answered 2xx.
    async fn deliver(&self, endpoint: &str, token: &str, body: &impl Serialize) -> bool {
        let attempts = self.adapter.config().ciba.notification_attempts;
        let mut backoff = FIRST_BACKOFF;
        for attempt in 1..=attempts {
            let sent = self
                .http
                .post(endpoint)
                .bearer_auth(token)
                .json(body)
                .send()
                .await;
            match sent {
                Ok(response) if response.status().is_success() => return true,
                Ok(response) => {
                    tracing::debug!(
                        status = response.status().as_u16(),
                        attempt,
                        "notification refused"
                    )
                }
                Err(error) => tracing::debug!(%error, attempt, "notification failed"),
            }
            if attempt < attempts {
                tokio::time::sleep(backoff).await;
                backoff *= 2;
            }
        }
        false
    }
}
