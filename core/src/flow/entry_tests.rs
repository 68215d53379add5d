//! The entry without a server: a kind opens in `AUTHENTICATION_REQUIRED`, the push is an
//! effect of `authenticate`, a trusted app completes at once, and an app not trusted yet
//! pairs its own key and continues.

use super::machine::{AppArrival, Effect, Entry, Event, FirstPick, apply};
use super::tests::{ctx, head, push_pick};
use super::*;
use crate::device_key::PublicDeviceKey;
use crate::error::FlowError;
use crate::ids::DeviceId;
use crate::policy::NetworkAction;

fn opened(devices: &[DeviceId], kind: FlowKind) -> Flow {
    entry::opening(head(devices), kind).expect("opens").next
}

fn app_key() -> PublicDeviceKey {
    let pair = josekit::jws::ES256.generate_key_pair().expect("a key pair");
    PublicDeviceKey::parse(pair.to_jwk_public_key().as_ref()).expect("a public key")
}

fn offer() -> PairingOffer {
    PairingOffer {
        pairing_key: "P".repeat(20),
        expires_at_ms: 60_000,
    }
}

#[test]
fn nothing_is_sent_until_authenticate_and_then_the_push_goes_with_it() {
    let device = DeviceId::generate();
    let flow = opened(std::slice::from_ref(&device), FlowKind::Oob);
    assert_eq!(flow.status(0), Status::AuthenticationRequired);
    assert_eq!(
        flow.allowed_actions(0),
        [Action::Authenticate, Action::CancelAuthentication]
    );
    let (auth_id, pick) = push_pick(&flow.id);
    let entry = Entry::Oob {
        devices: flow.devices.clone(),
        enrolment: None,
        start: Box::new(oob::Start {
            first: Some(FirstPick::Reached {
                device: device.clone(),
                pick: Box::new(pick),
            }),
            ..oob::Start::default()
        }),
    };
    let entered =
        apply(&flow, Event::Authenticate(Box::new(entry.clone())), &ctx(5)).expect("entered");
    assert_eq!(entered.next.status(5), Status::PushConfirmationWaiting);
    assert!(matches!(
        entered.effects.as_slice(),
        [Effect::SendPush { device: to, auth_id: sent }] if *to == device && *sent == auth_id
    ));
    // Entered once: a second authenticate is refused, and sends nothing.
    assert!(matches!(
        apply(&entered.next, Event::Authenticate(Box::new(entry)), &ctx(6)),
        Err(FlowError::NotAllowed { .. })
    ));
    // Canceled before entering: nothing to withdraw, nothing sent.
    let canceled = apply(&flow, Event::Cancel, &ctx(5)).expect("canceled");
    assert_eq!(canceled.next.status(5), Status::Canceled);
    assert!(canceled.effects.is_empty());
}

#[test]
fn a_trusted_app_completes_with_no_effect_unless_the_network_denies() {
    let device = DeviceId::generate();
    for kind in [FlowKind::Oob, FlowKind::Registration, FlowKind::NewDevice] {
        let flow = opened(std::slice::from_ref(&device), kind);
        let authorized = Event::AppAuthorized {
            device: flow.devices[0].clone(),
            network: None,
        };
        let done = apply(&flow, authorized, &ctx(5)).expect("authorized");
        assert_eq!(done.next.status(5), Status::Completed, "{kind:?}");
        assert!(done.effects.is_empty(), "{kind:?}: no push");
        assert_eq!(
            done.next
                .completed_approval()
                .map(|approval| approval.method),
            Some(ApprovalMethod::DeviceAuthorization)
        );
        let denied = Event::AppAuthorized {
            device: flow.devices[0].clone(),
            network: Some(NetworkAction::Deny),
        };
        let denied = apply(&flow, denied, &ctx(5)).expect("applied");
        assert_eq!(denied.next.status(5), Status::MfaFailed, "{kind:?}");
    }
}

#[test]
fn an_app_not_trusted_yet_pairs_its_own_key_then_continues() {
    let flow = opened(&[], FlowKind::Oob);
    let key = app_key();
    let arrival = AppArrival {
        key: key.clone(),
        devices: None,
        network: None,
        admission: new_device::Admission::Individually(offer()),
        nonce: "N".repeat(24),
    };
    let arrived = apply(&flow, Event::AppArrived(Box::new(arrival)), &ctx(5)).expect("arrived");
    assert!(matches!(
        arrived.effects.as_slice(),
        [Effect::IssuePairingKey(issued)] if *issued == offer()
    ));
    let waiting = arrived.next;
    assert_eq!(
        waiting.kind(),
        FlowKind::NewDevice,
        "admitted as a new device"
    );
    assert_eq!(waiting.status(5), Status::MobilePairingRequired);
    assert_eq!(
        waiting.entering_app.as_ref().map(|app| &app.key),
        Some(&key)
    );
    assert_eq!(
        waiting.allowed_actions(5),
        [Action::ContinueAuthentication, Action::CancelAuthentication]
    );
    assert_eq!(
        apply(&waiting, Event::Continue, &ctx(6)).err(),
        Some(FlowError::NotPaired)
    );
    let device = super::tests::phone(&DeviceId::generate());
    let paired = apply(
        &waiting,
        Event::DevicePaired {
            device: device.clone(),
        },
        &ctx(7),
    )
    .expect("paired")
    .next;
    assert_eq!(paired.status(7), Status::MobilePairingRequired);
    let done = apply(&paired, Event::Continue, &ctx(8))
        .expect("continued")
        .next;
    assert_eq!(done.status(8), Status::Completed);
    assert_eq!(
        done.completed_approval()
            .map(|approval| &approval.device_id),
        Some(&device.id)
    );
    // The key unused past its expiry: the automatic pairing failed.
    assert_eq!(waiting.status(60_000), Status::MfaFailed);
    // Canceled while waiting: the unused key is withdrawn.
    let canceled = apply(&waiting, Event::Cancel, &ctx(9)).expect("canceled");
    assert!(matches!(
        canceled.effects.as_slice(),
        [Effect::WithdrawPairingKey(key)] if *key == offer().pairing_key
    ));
}

#[test]
fn an_app_verified_by_the_primary_is_shown_its_pairing_key_after_the_approval() {
    let primary = DeviceId::generate();
    let flow = opened(std::slice::from_ref(&primary), FlowKind::Oob);
    let (_, pick) = push_pick(&flow.id);
    let arrival = AppArrival {
        key: app_key(),
        devices: Some(flow.devices.clone()),
        network: None,
        admission: new_device::Admission::ByPrimary(Some(FirstPick::Reached {
            device: primary.clone(),
            pick: Box::new(pick),
        })),
        nonce: "N".repeat(24),
    };
    let asked = apply(&flow, Event::AppArrived(Box::new(arrival)), &ctx(5))
        .expect("arrived")
        .next;
    assert_eq!(asked.status(5), Status::PushConfirmationWaiting);
    let push = asked.push().expect("a push").clone();
    let answer = verify::DeviceAnswer::signed(
        &push.auth_id,
        &primary,
        Decision::Approve,
        asked.params.digest(),
        None,
    );
    let fresh = machine::Fresh {
        auth_id: crate::ids::AuthId::generate(&asked.id),
        pairing: Some(offer()),
    };
    let admitted = apply(&asked, Event::DeviceAnswered { answer, fresh }, &ctx(6))
        .expect("approved")
        .next;
    assert_eq!(admitted.status(6), Status::MobilePairingRequired);
}
