//! Passwordless sign-in against the store: the passkey's assertion checked (its
//! credential names the owner, whose stored key verifies it), and seed 001's second step
//! for the federation server: the completed flow's result carries a one-time
//! `passwordlessContext`, which "Finalize Passwordless Authentication" spends with the
//! username to have the owner's policy evaluated.

use std::net::IpAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::engine::Versioned;
use super::passwordless::{self, Owner, Verdict};
use super::service::validate_application;
use super::webauthn::Refusal;
use super::{Application, ApprovalMethod, Event, Flow, FlowState, Method, steps};
use crate::error::{AdapterError, FlowError};
use crate::ids::{DeviceId, FlowId, random_alphanumeric};
use crate::policy::{MfaPolicy, NetworkAction};
use crate::user::UserId;
use crate::webauthn_authentication::{self, PendingAssertion};
use crate::{Adapter, keys, webauthn_credential};

/// Characters of a `passwordlessContext` (about 238 bits).
const CONTEXT_LEN: usize = 40;

/// What a `passwordlessContext` stands for, stored under its hash until spent or expired.
#[derive(Debug, Serialize, Deserialize)]
struct ContextRecord {
    /// The federation server the result went to: only it may spend the context.
    client_id: String,
    /// The flow that signed in.
    flow_id: FlowId,
    /// Who signed in.
    subject: UserId,
    /// The passkey, as the subject's device.
    device_id: DeviceId,
    /// SECURITY_KEY or PLATFORM.
    method: Method,
    /// The browser's address as the flow's start gave it.
    client_ip: Option<IpAddr>,
}

/// "Finalize Passwordless Authentication" (seed 001), parsed at the edge.
pub struct FinalizePasswordless {
    /// The username (`sub`) the federation server resolved for the subject.
    pub sub: String,
    /// The context the flow's result carried.
    pub context: String,
    /// The application signed in to (policy per application).
    pub application: Application,
    /// The accessing device's address, for the network rules.
    pub client_ip: Option<IpAddr>,
    /// The user's groups (policy per group); the stored ones when absent.
    pub groups: Option<Vec<String>>,
}

/// What policy says about a passwordless sign-in.
#[derive(Debug)]
pub struct PasswordlessOutcome {
    /// Whether the sign-in may complete.
    pub completed: bool,
    /// Who signed in.
    pub sub: UserId,
    /// `PLATFORM` or `SECURITY_KEY`.
    pub authentication_type: &'static str,
    /// The accessing device's address, when known.
    pub accessing_ip: Option<IpAddr>,
    /// Why it may not complete.
    pub reason: Option<String>,
}

fn context_key(context: &str) -> String {
    keys::passwordless_context(&hex::encode(Sha256::digest(context.as_bytes())))
}

/// Why `policy` refuses a sign-in with `method` from `ip`, if it does.
fn policy_refusal(policy: &MfaPolicy, method: Method, ip: Option<IpAddr>) -> Option<String> {
    if policy.network_action(ip) == Some(NetworkAction::Deny) {
        return steps::network_denial(Some(NetworkAction::Deny));
    }
    (!policy.allows(method)).then(|| {
        format!(
            "policy does not allow {} sign-in for this user and application",
            method.as_str()
        )
    })
}

impl Adapter {
    /// `checkAssertion` on a passwordless sign-in: the credential the assertion names
    /// must have an owner, whose stored key verifies it (origin, challenge, signature,
    /// user handle, a counter past the last one) and whose policy allows its method. A
    /// refused answer leaves a new challenge and counts as a wrong try.
    pub(super) async fn check_passkey(
        &self,
        flow_id: &FlowId,
        current: Versioned,
        assertion: &str,
        origin: &str,
    ) -> Result<Flow, AdapterError> {
        let (flow, _) = &current;
        let FlowState::Passwordless(passwordless::State::AssertionRequired { sign_in }) =
            flow.state()
        else {
            return Err(AdapterError::internal("no passkey is expected"));
        };
        let pending = sign_in.pending.clone();
        let (verdict, refusal) = self
            .passkey_verdict(flow, &pending, assertion, origin)
            .await?;
        let flow = self
            .update_flow(flow_id, Some(current), |flow| {
                // Checked against this challenge: a flow that moved on does not take it.
                let same = matches!(
                    flow.state(),
                    FlowState::Passwordless(passwordless::State::AssertionRequired { sign_in })
                        if sign_in.pending == pending
                );
                if !same {
                    return Err(FlowError::NotPending.into());
                }
                Ok(Event::PasskeyChecked(Box::new(verdict.clone())))
            })
            .await?;
        self.answered(flow, "assertion", refusal)
    }

    /// What an assertion leads to, and why it was refused when it was.
    async fn passkey_verdict(
        &self,
        flow: &Flow,
        pending: &PendingAssertion,
        assertion: &str,
        origin: &str,
    ) -> Result<(Verdict, Option<&'static str>), AdapterError> {
        let refused = |reason| -> Result<_, AdapterError> {
            Ok((
                Verdict::Refused(Box::new(self.passkey_sign_in()?)),
                Some(reason),
            ))
        };
        let Ok((credential_id, _)) = webauthn_authentication::identify(assertion) else {
            return refused("the assertion is malformed");
        };
        let Some(claim) = webauthn_credential::owner(self.store(), &credential_id).await? else {
            return refused("this passkey is not set up here");
        };
        let key = match self.webauthn_key(&claim.user, &claim.device).await {
            Ok(key) => key,
            Err(AdapterError::Flow(FlowError::UnknownDevice)) => {
                return refused("this passkey is not set up here");
            }
            Err(error) => return Err(error),
        };
        let verified = self
            .verify_assertion(&claim.user, &key, pending, assertion, origin)
            .await?;
        let cloned = match verified {
            Err(Refusal::Because(reason)) => return refused(reason),
            Err(Refusal::CounterBehind) => true,
            Ok(asserted) => {
                !webauthn_credential::counter_accepted(
                    self.store(),
                    &claim.device,
                    &key,
                    asserted.sign_count,
                )
                .await?
            }
        };
        if cloned {
            self.cloned(&flow.id, &claim.user, &claim.device, &key)
                .await?;
            return Ok((Verdict::Cloned, None));
        }
        let groups = self
            .find_user(&claim.user)
            .await?
            .map(|user| user.groups)
            .unwrap_or_default();
        let policies = &self.config().policies;
        let policy_group = policies.group_of(&groups).map(str::to_owned);
        let policy = policies.for_sign_in(policy_group.as_deref(), flow.application.id.as_deref());
        if !policy.allows(key.method) {
            let reason = policy_refusal(policy, key.method, None).unwrap_or_default();
            return Ok((Verdict::Denied(reason), None));
        }
        let owner = Owner {
            user: claim.user,
            device: claim.device,
            method: key.method,
            policy_group,
        };
        Ok((Verdict::Passed(owner), None))
    }

    /// A one-time `passwordlessContext` for a completed passwordless flow's result:
    /// random, stored hashed with a TTL, bound to the flow, its subject and the
    /// federation server picking the result up.
    pub(super) async fn issue_passwordless_context(
        &self,
        flow: &Flow,
    ) -> Result<Option<String>, AdapterError> {
        let Some(approval) = flow.completed_approval() else {
            return Ok(None);
        };
        let method = match approval.method {
            ApprovalMethod::Platform => Method::Platform,
            ApprovalMethod::SecurityKey => Method::SecurityKey,
            _ => return Ok(None),
        };
        let record = ContextRecord {
            client_id: flow.client_id.clone(),
            flow_id: flow.id.clone(),
            subject: flow.user_id.clone(),
            device_id: approval.device_id.clone(),
            method,
            client_ip: flow.client_ip,
        };
        let context = random_alphanumeric(CONTEXT_LEN);
        let ttl = self
            .config()
            .webauthn
            .as_ref()
            .ok_or_else(|| AdapterError::internal("no [webauthn] relying party"))?
            .passwordless_context_ttl_secs;
        let value = serde_json::to_vec(&record).map_err(AdapterError::internal)?;
        let ttl = crate::store::Ttl::Set(Duration::from_secs(ttl));
        if !self
            .store()
            .insert(&context_key(&context), &value, ttl)
            .await?
        {
            return Err(AdapterError::internal("a passwordless context collided"));
        }
        Ok(Some(context))
    }

    /// "Finalize Passwordless Authentication" (seed 001): spends the context (once, for
    /// the federation server it was issued to, for the user it names) and evaluates that
    /// user's policy now: the network rules for the accessing address, and whether the
    /// user's group or application policy allows the method used.
    pub async fn finalize_passwordless(
        &self,
        client_id: &str,
        request: FinalizePasswordless,
    ) -> Result<PasswordlessOutcome, AdapterError> {
        validate_application(&request.application)?;
        let sub = UserId::parse(&request.sub)
            .map_err(|error| AdapterError::Invalid(format!("sub: {error}")))?;
        let well_formed = request.context.len() == CONTEXT_LEN
            && request.context.bytes().all(|c| c.is_ascii_alphanumeric());
        if !well_formed {
            return Err(AdapterError::Invalid(
                "passwordlessContext is not one this service issues".to_owned(),
            ));
        }
        let unknown = AdapterError::NotFound("passwordlessContext");
        let Some(raw) = self.store().consume(&context_key(&request.context)).await? else {
            return Err(unknown);
        };
        let record: ContextRecord = serde_json::from_slice(&raw).map_err(AdapterError::internal)?;
        if record.client_id != client_id {
            return Err(unknown);
        }
        // Spent all the same: a context presented with another user is not tried again.
        if record.subject != sub {
            return Err(AdapterError::Invalid(
                "sub is not the user the passwordless sign-in named".to_owned(),
            ));
        }
        let groups = match request.groups {
            Some(groups) => groups,
            None => self
                .find_user(&sub)
                .await?
                .map(|user| user.groups)
                .unwrap_or_default(),
        };
        let policies = &self.config().policies;
        let policy = policies.for_sign_in(
            policies.group_of(&groups),
            request.application.id.as_deref(),
        );
        let accessing_ip = request.client_ip.or(record.client_ip);
        // The passkey may have been removed or disabled since the flow completed.
        let usable = match self.webauthn_key(&sub, &record.device_id).await {
            Ok(key) => key.disabled.is_none(),
            Err(AdapterError::Flow(FlowError::UnknownDevice)) => false,
            Err(error) => return Err(error),
        };
        let reason = if usable {
            policy_refusal(policy, record.method, accessing_ip)
        } else {
            Some("the passkey was removed or disabled after the sign-in".to_owned())
        };
        tracing::info!(
            target: "audit",
            flow_id = %record.flow_id,
            user_id = %sub,
            completed = reason.is_none(),
            "passwordless sign-in finalized"
        );
        Ok(PasswordlessOutcome {
            completed: reason.is_none(),
            sub,
            authentication_type: ApprovalMethod::of_passcode(record.method).authentication_type(),
            accessing_ip,
            reason,
        })
    }
}
