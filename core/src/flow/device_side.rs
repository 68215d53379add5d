//! The device's side of a flow: authenticating the device by its JWT, the requests
//! waiting for it (long poll), its signed decision, and pairing.

use std::time::Duration;

use serde::Serialize;

use super::engine::decode;
use super::verify::{Decision, DeviceAnswer};
use super::{Application, Event, Flow, Status};
use crate::device::{self, Device};
use crate::error::{AdapterError, FlowError};
use crate::ids::{AuthId, DeviceId};
use crate::params::DynamicParams;
use crate::user::UserId;
use crate::{Adapter, device_key, keys};

/// A request as the device sees it (the Device API's wire shape too).
#[derive(Clone, Debug, Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeviceRequest {
    /// The id to answer.
    pub auth_id: AuthId,
    /// `oob` or `transaction`.
    pub kind: String,
    /// The user asked (a device may serve several).
    pub user_id: UserId,
    /// Title to show.
    pub title: String,
    /// Body to show.
    pub body: String,
    /// The application signed in to.
    pub application: Application,
    /// The browser's address.
    pub client_ip: Option<String>,
    /// The parameters shown, which the proof binds.
    pub dynamic_params: DynamicParams,
    /// When the request times out (seconds since the epoch).
    pub expires_at: u64,
    /// A silent request: the app answers with its key, without asking the person.
    #[serde(default)]
    pub silent: bool,
    /// Number matching: the person picks the number their browser shows among these,
    /// and the proof carries it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub number_choices: Vec<u8>,
    /// The administrator's message, shown with the request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admin_message: Option<String>,
}

impl Adapter {
    /// Authenticates a device by its JWT: signature by its key, claims, single use.
    pub async fn authenticate_device(&self, token: &str) -> Result<Device, AdapterError> {
        let device = self.authenticate_any_device(token).await?;
        if device.one_time {
            return Err(AdapterError::Forbidden(
                "a one-time device may only answer the request of its own flow",
            ));
        }
        Ok(device)
    }

    /// Authenticates a device that answers requests: paired devices, and one-time devices
    /// while their flow is still waiting for an answer.
    pub async fn authenticate_responding_device(
        &self,
        token: &str,
    ) -> Result<Device, AdapterError> {
        let device = self.authenticate_any_device(token).await?;
        if device.one_time {
            let alive = match &device.one_time_flow {
                Some(flow) => self
                    .load_any(flow)
                    .await
                    .ok()
                    .is_some_and(|(flow, _)| !flow.status(self.clock().now_ms()).is_terminal()),
                None => false,
            };
            if !alive {
                return Err(AdapterError::Unauthenticated(
                    "a one-time device is trusted only while its flow runs",
                ));
            }
        }
        Ok(device)
    }

    async fn authenticate_any_device(&self, token: &str) -> Result<Device, AdapterError> {
        let issuer = crate::jwt::unverified_issuer(token).ok_or(AdapterError::Unauthenticated(
            "the device token is not a JWT with an iss",
        ))?;
        let device_id = DeviceId::parse(&issuer).ok_or(AdapterError::Unauthenticated(
            "the device token's iss is not a device id",
        ))?;
        let device = device::find(self.store(), &device_id)
            .await?
            .ok_or(AdapterError::Unauthenticated("unknown or unpaired device"))?;
        let now = self.clock().now();
        let claims = device_key::verify_token(token, &device.public_key, device_id.as_str(), now)
            .map_err(AdapterError::Unauthenticated)?;
        // Remember the jti until the token could no longer be accepted anyway.
        let keep =
            claims.expires_at.duration_since(now).unwrap_or_default() + device_key::CLOCK_SKEW;
        let jti_hash = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(
            claims.jti.as_bytes(),
        ));
        if !self
            .store()
            .spend(&keys::device_jti(&device_id, &jti_hash), keep)
            .await?
        {
            return Err(AdapterError::Unauthenticated(
                "the device token was already used",
            ));
        }
        Ok(device)
    }

    /// The requests waiting for `device`; when there are none, waits up to `wait` for one.
    pub async fn pending_requests(
        &self,
        device: &Device,
        wait: Duration,
    ) -> Result<Vec<DeviceRequest>, AdapterError> {
        let mut subscription = self.store().subscribe(&keys::device_channel(&device.id));
        let requests = self.list_settled(device).await?;
        let wait = wait.min(self.long_poll_cap());
        if !requests.is_empty() || wait.is_zero() {
            return Ok(requests);
        }
        let _open = self.metrics().long_poll_started();
        subscription.wait(wait).await;
        self.list_settled(device).await
    }

    /// The pending list, given a moment when it holds only requests listed before their
    /// flow's commit: the device is woken when a request is listed, just before the commit
    /// that makes it pending lands (see `list_push`).
    async fn list_settled(&self, device: &Device) -> Result<Vec<DeviceRequest>, AdapterError> {
        const TRIES: usize = 4;
        const PAUSE: Duration = Duration::from_millis(25);
        for _ in 1..TRIES {
            let (requests, unsettled) = self.list_pending(device).await?;
            if !requests.is_empty() || !unsettled {
                return Ok(requests);
            }
            tokio::time::sleep(PAUSE).await;
        }
        Ok(self.list_pending(device).await?.0)
    }

    /// The requests waiting for `device`, and whether the list also holds requests whose
    /// flow does not wait for them (yet).
    async fn list_pending(
        &self,
        device: &Device,
    ) -> Result<(Vec<DeviceRequest>, bool), AdapterError> {
        let store = self.store();
        let index = keys::device_pending(&device.id);
        let now = self.clock().now_ms();
        let mut requests = Vec::new();
        let mut unsettled = false;
        for member in store.index_members(&index).await? {
            let waiting = match AuthId::parse(&member) {
                Some(auth_id) => match store.get(&keys::flow(&auth_id.flow())).await? {
                    Some(record) => {
                        let flow = decode(&record.value)?;
                        match flow.push() {
                            Some(push)
                                if push.auth_id == auth_id
                                    && push.device_id == device.id
                                    && flow.status(now) == Status::PushConfirmationWaiting =>
                            {
                                Some(DeviceRequest {
                                    auth_id,
                                    kind: flow.kind().as_str().to_owned(),
                                    user_id: flow.user_id.clone(),
                                    title: flow.message.title.clone(),
                                    body: flow.message.body.clone(),
                                    application: flow.application.clone(),
                                    client_ip: flow.client_ip.map(|ip| ip.to_string()),
                                    dynamic_params: flow.params.clone(),
                                    expires_at: push.expires_at_ms / 1000,
                                    silent: push.silent,
                                    number_choices: push.choices.clone(),
                                    admin_message: flow.policy.admin_message.clone(),
                                })
                            }
                            // Answered, or the flow is over: no longer pending.
                            Some(push) if push.auth_id == auth_id => None,
                            _ if flow.status(now).is_terminal() => None,
                            // Listed before its transition's commit (which may still
                            // land), or replaced: hidden, and gone with the flow.
                            _ => {
                                unsettled = true;
                                continue;
                            }
                        }
                    }
                    None => None,
                },
                None => None,
            };
            match waiting {
                Some(request) => requests.push(request),
                // Answered, expired, or its flow is gone: no longer pending.
                None => {
                    store.index_remove(&index, &member).await?;
                }
            }
        }
        requests.sort_by_key(|request| request.expires_at);
        Ok((requests, unsettled))
    }

    /// The device's answer, bound by its proof to the request, the decision and the
    /// parameters shown, checked by [`super::verify`] whatever the kind. Of concurrent
    /// answers exactly one wins; the others get a conflict.
    pub async fn decide(
        &self,
        device: &Device,
        auth_id: &str,
        decision: Decision,
        proof: &str,
    ) -> Result<Flow, AdapterError> {
        let auth_id = AuthId::parse(auth_id).ok_or(AdapterError::NotFound("request"))?;
        let answer =
            DeviceAnswer::from_proof(proof, &device.public_key, &device.id, &auth_id, decision)
                .map_err(bad_proof)?;
        let (flow_id, answer) = (&auth_id.flow(), &answer);
        // On this instance's latest version of the flow, without a read when it has one.
        self.on_latest(flow_id, |current| async move {
            let fresh = self.fresh_for(&current.0);
            self.update_flow(flow_id, Some(current), |_| {
                Ok(Event::DeviceAnswered {
                    answer: answer.clone(),
                    fresh: fresh.clone(),
                })
            })
            .await
        })
        .await
        .map_err(|error| match error {
            AdapterError::NotFound(_) => AdapterError::NotFound("request"),
            other => bad_proof_of(other),
        })
    }

    /// Issues a one-time pairing key for a known user.
    pub async fn issue_pairing_key(
        &self,
        user_id: &UserId,
    ) -> Result<(crate::ids::PairingKey, u64), AdapterError> {
        self.user(user_id).await?;
        let ttl = self.config().policy.pairing_key_ttl_secs;
        let key =
            crate::pairing::issue(self.store(), user_id, None, Duration::from_secs(ttl)).await?;
        Ok((key, self.clock().now_secs() + ttl))
    }

    /// Pairs an already trusted device with one more user (a shared device). The key is
    /// spent, then the registration it came from (if any) completes, and only then does
    /// the device serve the new user.
    pub async fn join_device(
        &self,
        device: &Device,
        pairing_key: &str,
    ) -> Result<Device, AdapterError> {
        self.check_registration_open(pairing_key, &device.public_key)
            .await?;
        let (user, flow) =
            crate::pairing::claim_for_join(self.store(), &device.id, pairing_key).await?;
        if let Some(flow) = flow {
            let mut joined = device.clone();
            joined.also_paired.push(user.clone());
            self.complete_registration(&joined, &user, &flow).await?;
        }
        let joined = crate::pairing::add_user(self.store(), &device.id, &user).await?;
        device::claim_primary(self.store(), &user, &device.id).await?;
        Ok(joined)
    }

    /// Pairs a device with the user its pairing key was issued for: the key is spent, the
    /// registration it came from (if any) completes, and only then is the device saved —
    /// a registration that ended meanwhile trusts nothing. The device returned carries
    /// its passcode seed in the clear, for the pairing's answer; the store keeps it sealed
    /// when a data key is configured.
    pub async fn pair_device(
        &self,
        request: crate::pairing::PairingRequest,
    ) -> Result<Device, AdapterError> {
        self.check_registration_open(&request.pairing_key, &request.public_key)
            .await?;
        let seed = crate::otp::new_totp_secret();
        let stored_seed = crate::sealing::seal(self.data_key(), &seed)?;
        let (mut device, flow) = crate::pairing::redeem(
            self.store(),
            request,
            Some(stored_seed),
            self.clock().now_ms(),
        )
        .await?;
        if let Some(flow) = flow {
            let user = device.user_id.clone();
            self.complete_registration(&device, &user, &flow).await?;
        }
        device::save(self.store(), &device).await?;
        device::claim_primary(self.store(), &device.user_id, &device.id).await?;
        device.otp_seed = Some(seed);
        Ok(device)
    }

    /// Refuses, without spending it, a key whose registration flow no longer waits for it,
    /// or that an app entered the flow for with another key than `presented`.
    async fn check_registration_open(
        &self,
        pairing_key: &str,
        presented: &crate::device_key::PublicDeviceKey,
    ) -> Result<(), AdapterError> {
        if let Some(Some(flow)) = crate::pairing::grant_flow(self.store(), pairing_key).await? {
            let waiting = self.load_any(&flow).await.ok().filter(|(flow, _)| {
                matches!(
                    flow.status(self.clock().now_ms()),
                    super::Status::MobileActivationRequired | super::Status::MobilePairingRequired
                )
            });
            let Some((flow, _)) = waiting else {
                return Err(AdapterError::NotFound("pairing key"));
            };
            // The key an app entered with is the only one its pairing key pairs: whoever
            // else reads the relayed `serverPayload` cannot slip in a key of their own. The
            // flow's expected key never changes while it waits for the pairing.
            if let Some(app) = &flow.entering_app
                && *presented != app.key
            {
                return Err(AdapterError::Invalid(
                    "this pairing key pairs only the key the app entered the flow with".to_owned(),
                ));
            }
        }
        Ok(())
    }

    /// Completes the registration flow a pairing key came from; a conflict when that flow
    /// no longer waits for a device.
    async fn complete_registration(
        &self,
        device: &Device,
        user: &crate::user::UserId,
        flow: &crate::ids::FlowId,
    ) -> Result<(), AdapterError> {
        let default = device::default_for_user(self.store(), user).await?;
        let summary =
            super::service::summaries(std::slice::from_ref(device), default.as_ref()).remove(0);
        let paired = self.update_flow(flow, None, |_| {
            Ok(Event::DevicePaired {
                device: summary.clone(),
            })
        });
        match crate::audit::as_device(&device.id, paired).await {
            Ok(_) => Ok(()),
            Err(AdapterError::NotFound(_) | AdapterError::Flow(_)) => Err(AdapterError::Conflict(
                "the registration has ended".to_owned(),
            )),
            Err(error) => Err(error),
        }
    }
}

/// A proof that does not verify or binds something else is the caller's mistake.
fn bad_proof(error: FlowError) -> AdapterError {
    match error {
        FlowError::BadProof(reason) => AdapterError::Invalid(reason.to_owned()),
        other => other.into(),
    }
}

fn bad_proof_of(error: AdapterError) -> AdapterError {
    match error {
        AdapterError::Flow(error) => bad_proof(error),
        other => other,
    }
}
