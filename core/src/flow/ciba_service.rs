//! CIBA requests against the store: started for a known user on their mobile device,
//! answered through the same device requests and proofs as out-of-band flows, redeemed
//! for tokens once.

use std::collections::BTreeMap;
use std::time::Duration;

use super::ciba::{CibaRequest, Grant};
use super::machine::Pick;
use super::service::summaries;
use super::{Application, Event, Flow, FlowKind, FlowPolicy, Head, ciba};
use crate::config::DeliveryMode;
use crate::error::{AdapterError, FlowError};
use crate::ids::{AuthId, FlowId};
use crate::params::{DynamicParams, Message};
use crate::user::UserWithDevices;
use crate::{Adapter, device};

/// How long an expired request stays readable, so that the client is told
/// `expired_token` rather than `invalid_grant`.
const EXPIRED_GRACE: Duration = Duration::from_secs(600);

/// A validated backchannel authentication request.
pub struct StartCiba {
    /// The client.
    pub client_id: String,
    /// Its display name, shown on the device.
    pub client_name: String,
    /// The user, already resolved from the hint, with their device ids and default device
    /// (read together: not read again).
    pub user: UserWithDevices,
    /// Whether the scopes release profile claims: the flow then keeps the profile for the
    /// token request.
    pub keep_profile: bool,
    /// Scopes granted to the request.
    pub scopes: Vec<String>,
    /// Shown on the device.
    pub binding_message: Option<String>,
    /// Requested ACRs.
    pub acr_values: Option<String>,
    /// How the client learns the outcome.
    pub delivery_mode: DeliveryMode,
    /// Bearer token for the client's notification endpoint.
    pub notification_token: Option<String>,
    /// How long the request waits for the person.
    pub expiry: Duration,
    /// Minimum seconds between token polls.
    pub interval_secs: u64,
}

impl Adapter {
    /// Starts a CIBA request: pushes it to the user's default mobile device, else their
    /// first one. The auth_req_id is the flow id (142 random bits).
    pub async fn start_ciba(&self, request: StartCiba) -> Result<Flow, AdapterError> {
        let store = self.store();
        let devices = device::listed(store, &request.user).await?;
        let UserWithDevices {
            profile,
            default_device: default,
            ..
        } = request.user;
        // The user's group's and the relying party's policy (by client id): devices it
        // refuses are skipped, and the push counts against the user's limit. No person
        // is at a page to pick a device, so whatever `device_selection` says, the push
        // goes to the primary.
        let policy_group = self
            .config()
            .policies
            .group_of(&profile.groups)
            .map(str::to_owned);
        let policy = self
            .config()
            .policies
            .for_sign_in(policy_group.as_deref(), Some(&request.client_id));
        let usable: Vec<&device::Device> = devices
            .iter()
            .filter(|device| policy.os_refusal(&device.os, &device.os_version).is_none())
            .collect();
        let target = usable
            .iter()
            .find(|device| Some(&device.id) == default.as_ref())
            .or_else(|| usable.first())
            .copied()
            .ok_or(FlowError::NoUsableDevice)?;
        self.count_push(&profile.id, policy).await?;

        let mut shown = BTreeMap::from([("scope".to_owned(), request.scopes.join(" "))]);
        if let Some(message) = &request.binding_message {
            shown.insert("binding_message".to_owned(), message.clone());
        }
        let params = DynamicParams::parse(shown).map_err(AdapterError::Invalid)?;
        let texts = self.texts(profile.language.as_deref());
        let body = match &request.binding_message {
            Some(message) => texts.text(
                "ciba-body-binding",
                &[("client", &request.client_name), ("binding", message)],
            )?,
            None => texts.text("ciba-body", &[("client", &request.client_name)])?,
        };
        let now = self.clock().now_ms();
        let id = FlowId::generate();
        let head = Head {
            id: id.clone(),
            client_id: request.client_id.clone(),
            user_id: profile.id.clone(),
            application: Application {
                name: request.client_name.clone(),
                id: Some(request.client_id.clone()),
                icon_url: None,
            },
            client_ip: None,
            client_device: None,
            params,
            message: Message {
                title: request.client_name,
                body,
            },
            return_url: None,
            created_at_ms: now,
            // The machine pushes only to the flow's known devices: this one.
            devices: summaries(std::slice::from_ref(target), default.as_ref()),
            result_picked_up: false,
            language: profile.language.clone(),
            ciba: Some(CibaRequest {
                client_id: request.client_id,
                scopes: request.scopes,
                binding_message: request.binding_message,
                acr_values: request.acr_values,
                delivery_mode: request.delivery_mode,
                notification_token: request.notification_token,
                interval_secs: request.interval_secs,
                last_poll_ms: None,
                profile: request.keep_profile.then_some(profile),
            }),
            manage_devices: false,
            pushes_sent: 0,
            browser_binding: None,
            one_time_device: None,
            policy: FlowPolicy::default(),
            policy_group,
            otp_failures: 0,
            codes_sent: 0,
            enrolment: None,
            entering_app: None,
        };
        let expiry_ms = u64::try_from(request.expiry.as_millis()).unwrap_or(u64::MAX);
        let pick = Pick::Push {
            auth_id: AuthId::generate(&id),
            number_match: None,
        };
        let ctx = self.context(&head, now);
        let transition = ciba::start(head, target.id.clone(), pick, expiry_ms, &ctx)?;
        self.insert_flow(transition, request.expiry + EXPIRED_GRACE, Vec::new())
            .await
    }

    /// A token request for `auth_req_id` by `client_id`: records the poll (for
    /// `slow_down`) and, once approved, redeems the request exactly once.
    pub async fn ciba_token(
        &self,
        auth_req_id: &str,
        client_id: &str,
    ) -> Result<(Flow, Grant), AdapterError> {
        let id = FlowId::parse(auth_req_id).ok_or(AdapterError::NotFound("auth_req_id"))?;
        let id = &id;
        self.on_latest(id, |(flow, version)| async move {
            if flow.kind() != FlowKind::Ciba || flow.client_id != client_id {
                return Err(AdapterError::NotFound("auth_req_id"));
            }
            self.update_flow_with(id, Some((flow, version)), |flow| {
                Ok((
                    Event::TokenRequested,
                    ciba::grant(flow, self.clock().now_ms())?,
                ))
            })
            .await
        })
        .await
    }

    /// A decided CIBA request, for notifications: its current state, unredeemed.
    pub async fn ciba_request(&self, auth_req_id: &FlowId) -> Result<Flow, AdapterError> {
        let (flow, _) = self.load_any(auth_req_id).await?;
        if flow.kind() != FlowKind::Ciba {
            return Err(AdapterError::NotFound("auth_req_id"));
        }
        Ok(flow)
    }
}
