//! Passwordless sign-in (seed 001's "Initialize Passwordless Authentication"): the flow
//! starts with no user; the page asks for a passkey with no credential named (a
//! discoverable one answers, the person verified), the credential the assertion names
//! tells who signs in, and the flow completes as its owner. Pure: the service finds the
//! owner, verifies the signature and reads the owner's policy; this machine only moves.

use serde::{Deserialize, Serialize};

use super::machine::{Context, Entry, Event, Transition, WebauthnSignIn};
use super::steps::{self, Ending};
use super::{Action, Approval, ApprovalMethod, Flow, FlowState, Head, View};
use crate::error::FlowError;
use crate::ids::DeviceId;
use crate::policy::{Method, NetworkAction};
use crate::user::UserId;

/// Where a passwordless sign-in stands.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum State {
    /// Waiting for the browser to enter (`authenticate {}`).
    AuthenticationRequired,
    /// Any passkey of the relying party may sign the challenge.
    AssertionRequired {
        /// The options and the ceremony state (boxed: large).
        sign_in: Box<WebauthnSignIn>,
    },
    /// Refused: the network, the owner's policy, too many refused answers, a clone.
    MfaFailed {
        /// Why.
        reason: String,
    },
    /// Signed in as the credential's owner.
    Completed {
        /// How.
        approval: Approval,
    },
    /// Ended without success after a failure.
    Failed {
        /// Why.
        reason: String,
    },
    /// The person gave up.
    Canceled,
}

/// Who a verified passkey names, as the service found them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Owner {
    /// The credential's owner: the flow's user from now on.
    pub user: UserId,
    /// The credential, as the owner's device.
    pub device: DeviceId,
    /// SECURITY_KEY or PLATFORM, as it was set up.
    pub method: Method,
    /// The owner's policy group (the first of their groups that has one).
    pub policy_group: Option<String>,
}

/// What a checked passkey assertion leads to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Verified, and the owner's policy allows its method: signed in as the owner.
    Passed(Owner),
    /// Refused (unknown credential, wrong origin, bad signature): a new challenge.
    Refused(Box<WebauthnSignIn>),
    /// The owner's policy does not allow the credential's method (the reason says so).
    Denied(String),
    /// Its signature counter did not move past the last one: a cloned authenticator (or
    /// the original, after a clone signed in). The credential is disabled.
    Cloned,
}

impl State {
    /// What the state shows.
    pub fn view(&self) -> View<'_> {
        match self {
            Self::AuthenticationRequired => View::AuthenticationRequired,
            Self::AssertionRequired { sign_in } => View::Assertion {
                device: None,
                options: &sign_in.options,
            },
            Self::MfaFailed { reason } => View::MfaFailed(reason),
            Self::Completed { approval } => View::Completed {
                approval: Some(approval),
                skipped: None,
            },
            Self::Failed { reason } => View::Failed(reason),
            Self::Canceled => View::Canceled,
        }
    }
}

/// The first state once a browser is on the page: a challenge, unless the network
/// refuses.
pub fn start(
    head: Head,
    network: Option<NetworkAction>,
    sign_in: Box<WebauthnSignIn>,
) -> Transition {
    let state = match steps::network_denial(network) {
        Some(reason) => State::MfaFailed { reason },
        None => State::AssertionRequired { sign_in },
    };
    Transition::to(head.into_flow(FlowState::Passwordless(state)))
}

/// What `_links` offers now: no device to pick (the passkey picks itself).
pub fn actions(flow: &Flow, now_ms: u64) -> Vec<Action> {
    let mut actions = steps::browser_actions(flow, flow.status(now_ms));
    actions.retain(|action| !matches!(action, Action::SelectDevice));
    actions
}

fn next(flow: &Flow, state: State) -> Flow {
    flow.clone().with_state(FlowState::Passwordless(state))
}

/// The flow after `event`, or why the event does not apply.
pub fn apply(
    flow: &Flow,
    state: &State,
    event: Event,
    ctx: &Context,
) -> Result<Transition, FlowError> {
    let now = ctx.now_ms;
    match (state, event) {
        (State::AuthenticationRequired, Event::Authenticate(entry)) => match *entry {
            Entry::Passwordless { network, sign_in } => {
                Ok(start(flow.head.clone(), network, sign_in))
            }
            other => Err(steps::not_allowed(
                &Event::Authenticate(Box::new(other)),
                flow,
                now,
            )),
        },
        (State::AssertionRequired { .. }, Event::PasskeyChecked(verdict)) => {
            let mut head = flow.head.clone();
            let state = match *verdict {
                Verdict::Passed(owner) => {
                    head.otp_failures = 0;
                    head.user_id = owner.user;
                    head.policy_group = owner.policy_group;
                    State::Completed {
                        approval: Approval {
                            device_id: owner.device,
                            method: ApprovalMethod::of_passcode(owner.method),
                            decided_at_ms: now,
                        },
                    }
                }
                Verdict::Refused(retry) => {
                    head.otp_failures += 1;
                    if head.otp_failures >= ctx.max_otp_attempts {
                        State::MfaFailed {
                            reason: steps::WEBAUTHN_LOCKED_OUT.to_owned(),
                        }
                    } else {
                        State::AssertionRequired { sign_in: retry }
                    }
                }
                Verdict::Denied(reason) => State::MfaFailed { reason },
                Verdict::Cloned => State::MfaFailed {
                    reason: steps::CLONED.to_owned(),
                },
            };
            Ok(Transition::to(
                head.into_flow(FlowState::Passwordless(state)),
            ))
        }
        (_, Event::Cancel) => {
            let state = match steps::cancel(flow, flow.status(now)) {
                Some(Ending::Canceled) => State::Canceled,
                Some(Ending::Failed(reason)) => State::Failed { reason },
                None => return Err(steps::not_allowed(&Event::Cancel, flow, now)),
            };
            Ok(Transition::to(next(flow, state)))
        }
        (_, Event::PickUp) => Ok(Transition::to(steps::pick_up(flow, now)?)),
        (
            _,
            Event::PasskeyChecked(_) | Event::DeviceUnpaired { .. } | Event::DeviceAnswered { .. },
        ) => Err(FlowError::NotPending),
        (_, event) => Err(steps::not_allowed(&event, flow, now)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::Status;
    use crate::flow::tests::{ctx, head};
    use crate::webauthn::WebauthnConfig;

    fn sign_in() -> Box<WebauthnSignIn> {
        let config = WebauthnConfig {
            rp_id: "example.com".to_owned(),
            rp_name: "Example".to_owned(),
            origins: vec!["https://login.example.com".to_owned()],
            attestation: Default::default(),
            allowed_aaguids: Vec::new(),
            attestation_roots: Vec::new(),
            challenge_ttl_secs: 300,
            passwordless_context_ttl_secs: 120,
        };
        let relying_party = config.relying_party().unwrap();
        let (options, pending) =
            crate::webauthn_authentication::start_discoverable(&relying_party.webauthn, 1_000_000)
                .unwrap();
        Box::new(WebauthnSignIn { options, pending })
    }

    fn asking() -> Flow {
        let mut head = head(&[]);
        head.user_id = UserId::anonymous();
        start(head, None, sign_in()).next
    }

    fn checked(flow: &Flow, verdict: Verdict) -> Result<Flow, FlowError> {
        let FlowState::Passwordless(state) = flow.state() else {
            panic!("a passwordless flow");
        };
        let event = Event::PasskeyChecked(Box::new(verdict));
        apply(flow, state, event, &ctx(5)).map(|transition| transition.next)
    }

    #[test]
    fn a_verified_passkey_signs_its_owner_in_once() {
        let flow = asking();
        assert_eq!(flow.status(0), Status::AssertionRequired);
        assert_eq!(flow.selected_device(), None);
        let owner = Owner {
            user: UserId::parse("erin").unwrap(),
            device: DeviceId::generate(),
            method: Method::Platform,
            policy_group: Some("staff".to_owned()),
        };
        let done = checked(&flow, Verdict::Passed(owner.clone())).unwrap();
        assert_eq!(done.user_id, owner.user);
        assert_eq!(done.policy_group.as_deref(), Some("staff"));
        let approval = done.completed_approval().unwrap();
        assert_eq!(approval.method, ApprovalMethod::Platform);
        assert_eq!(approval.device_id, owner.device);
        assert!(matches!(
            checked(&done, Verdict::Cloned),
            Err(FlowError::NotPending)
        ));
    }

    #[test]
    fn refused_answers_lock_out_and_a_clone_or_policy_fails_it() {
        let mut flow = asking();
        for _ in 0..2 {
            flow = checked(&flow, Verdict::Refused(sign_in())).unwrap();
            assert_eq!(flow.status(0), Status::AssertionRequired);
        }
        let locked = checked(&flow, Verdict::Refused(sign_in())).unwrap();
        assert_eq!(locked.failure_reason(), Some(steps::WEBAUTHN_LOCKED_OUT));
        let cloned = checked(&asking(), Verdict::Cloned).unwrap();
        assert_eq!(cloned.failure_reason(), Some(steps::CLONED));
        let denied = checked(&asking(), Verdict::Denied("not PLATFORM".to_owned())).unwrap();
        assert_eq!(denied.failure_reason(), Some("not PLATFORM"));
        assert_eq!(denied.user_id, UserId::anonymous());
        let mut head = head(&[]);
        head.user_id = UserId::anonymous();
        let refused = start(head, Some(NetworkAction::Deny), sign_in()).next;
        assert_eq!(refused.status(0), Status::MfaFailed);
    }
}
