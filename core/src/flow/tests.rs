//! The flow machines without a server or a store: each kind's states and events, time
//! moved through the context, and the one device check run against every kind.

use super::machine::{Context, Effect, Event, FirstPick, Fresh, Pick, Transition, apply};
use super::verify::{Decision, DeviceAnswer};
use super::*;
use crate::error::FlowError;
use crate::ids::{AuthId, DeviceId, FlowId};
use crate::params::{DynamicParams, Message};
use crate::policy::NetworkAction;
use crate::user::UserId;

pub(super) fn phone(id: &DeviceId) -> DeviceSummary {
    DeviceSummary {
        id: id.clone(),
        kind: "iPhone".into(),
        name: "phone".into(),
        nickname: None,
        target: "iPhone 15".into(),
        default: false,
        method: Method::PingidMobile,
        otp_enabled: false,
        push_enabled: true,
        address: None,
        unusable: None,
        backup: false,
        code_length: None,
    }
}

pub(crate) fn head(devices: &[DeviceId]) -> Head {
    let params = DynamicParams::parse([("amount".to_owned(), "10 EUR".to_owned())].into())
        .expect("valid parameters");
    Head {
        id: FlowId::generate(),
        client_id: "fed".into(),
        user_id: UserId::parse("alice").expect("valid user"),
        application: Application::default(),
        client_ip: None,
        client_device: None,
        params,
        message: Message {
            title: "t".into(),
            body: "b".into(),
        },
        return_url: None,
        created_at_ms: 0,
        devices: devices.iter().map(phone).collect(),
        result_picked_up: false,
        language: None,
        ciba: None,
        manage_devices: true,
        pushes_sent: 0,
        browser_binding: None,
        one_time_device: None,
        policy: FlowPolicy::default(),
        policy_group: None,
        otp_failures: 0,
        codes_sent: 0,
        enrolment: None,
        entering_app: None,
    }
}

pub(crate) fn ctx(now_ms: u64) -> Context {
    Context {
        now_ms,
        push_timeout_ms: 1000,
        max_pushes: 3,
        max_otp_attempts: 3,
    }
}

pub(super) fn push_pick(flow: &FlowId) -> (AuthId, Pick) {
    let auth_id = AuthId::generate(flow);
    let pick = Pick::Push {
        auth_id: auth_id.clone(),
        number_match: None,
    };
    (auth_id, pick)
}

fn fresh(flow: &Flow) -> Fresh {
    Fresh {
        auth_id: AuthId::generate(&flow.id),
        pairing: Some(PairingOffer {
            pairing_key: "K".repeat(20),
            expires_at_ms: 60_000,
        }),
    }
}

fn answered(flow: &Flow, answer: DeviceAnswer, now: u64) -> Result<Transition, FlowError> {
    let event = Event::DeviceAnswered {
        answer,
        fresh: fresh(flow),
    };
    apply(flow, event, &ctx(now))
}

fn answer(flow: &Flow, decision: Decision, number: Option<u8>) -> DeviceAnswer {
    let push = flow.push().expect("a push waits");
    DeviceAnswer::signed(
        &push.auth_id,
        &push.device_id,
        decision,
        flow.params.digest(),
        number,
    )
}

/// An out-of-band flow waiting on `device`'s push, picked at start.
fn oob_waiting(device: &DeviceId) -> Flow {
    let head = head(std::slice::from_ref(device));
    let (_, pick) = push_pick(&head.id);
    let start = oob::Start {
        first: Some(FirstPick::Reached {
            device: device.clone(),
            pick: Box::new(pick),
        }),
        ..oob::Start::default()
    };
    oob::start(head, start, &ctx(0)).expect("starts").next
}

#[test]
fn oob_approve_then_continue_completes_once() {
    let device = DeviceId::generate();
    let waiting = oob_waiting(&device);
    assert_eq!(waiting.status(10), Status::PushConfirmationWaiting);
    let decided = answered(&waiting, answer(&waiting, Decision::Approve, None), 10)
        .expect("approved")
        .next;
    assert_eq!(decided.status(10), Status::MfaCompleted);
    assert_eq!(
        apply(&decided, Event::PickUp, &ctx(10)).err(),
        Some(FlowError::NotTerminal("MFA_COMPLETED"))
    );
    let done = apply(&decided, Event::Continue, &ctx(20)).expect("continues");
    assert!(matches!(done.effects.as_slice(), [Effect::RememberMfa]));
    assert_eq!(done.next.status(20), Status::Completed);
    assert_eq!(
        done.next
            .completed_approval()
            .map(|approval| approval.method),
        Some(ApprovalMethod::Push)
    );
    let picked = apply(&done.next, Event::PickUp, &ctx(20))
        .expect("picked")
        .next;
    assert_eq!(
        apply(&picked, Event::PickUp, &ctx(20)).err(),
        Some(FlowError::AlreadyPickedUp)
    );
}

#[test]
fn oob_start_pushes_only_after_the_commit() {
    let device = DeviceId::generate();
    let head = head(std::slice::from_ref(&device));
    let (auth_id, pick) = push_pick(&head.id);
    let start = oob::Start {
        first: Some(FirstPick::Reached {
            device: device.clone(),
            pick: Box::new(pick),
        }),
        ..oob::Start::default()
    };
    let transition = oob::start(head, start, &ctx(0)).expect("starts");
    assert!(matches!(
        transition.effects.as_slice(),
        [Effect::SendPush { device: to, auth_id: sent }] if *to == device && *sent == auth_id
    ));
    assert_eq!(transition.next.pushes_sent, 1);
}

#[test]
fn oob_policy_at_start_denies_skips_or_sets_up() {
    let device = DeviceId::generate();
    let denied = oob::Start {
        network: Some(NetworkAction::Deny),
        ..oob::Start::default()
    };
    let flow = oob::start(head(std::slice::from_ref(&device)), denied, &ctx(0))
        .expect("starts")
        .next;
    assert_eq!(flow.status(0), Status::MfaFailed);
    let trusted = oob::Start {
        network: Some(NetworkAction::Bypass),
        ..oob::Start::default()
    };
    let flow = oob::start(head(std::slice::from_ref(&device)), trusted, &ctx(0))
        .expect("starts")
        .next;
    assert_eq!(flow.status(0), Status::Completed);
    assert_eq!(
        flow.failure_reason(),
        Some("sign-in from a trusted network")
    );
    let offer = PairingOffer {
        pairing_key: "P".repeat(20),
        expires_at_ms: 500,
    };
    let on_the_spot = oob::Start {
        enrol_on_the_spot: Some(offer.clone()),
        ..oob::Start::default()
    };
    let transition = oob::start(head(&[]), on_the_spot, &ctx(0)).expect("starts");
    assert_eq!(transition.next.status(0), Status::MobileActivationRequired);
    assert!(
        matches!(transition.effects.as_slice(), [Effect::IssuePairingKey(issued)] if *issued == offer)
    );
    assert_eq!(transition.next.status(500), Status::MfaFailed);
}

#[test]
fn oob_push_times_out_by_the_clock_and_can_be_retried() {
    let device = DeviceId::generate();
    let waiting = oob_waiting(&device);
    assert_eq!(waiting.status(1000), Status::PushConfirmationTimedOut);
    assert_eq!(
        answered(&waiting, answer(&waiting, Decision::Approve, None), 1000).err(),
        Some(FlowError::RequestExpired)
    );
    let (_, pick) = push_pick(&waiting.id);
    let retry = Event::SelectDevice {
        device: device.clone(),
        pick,
    };
    let retried = apply(&waiting, retry, &ctx(1000)).expect("retried").next;
    assert_eq!(retried.status(1500), Status::PushConfirmationWaiting);
}

#[test]
fn oob_denial_is_final_and_cancel_fails_it() {
    let device = DeviceId::generate();
    let waiting = oob_waiting(&device);
    let denied = answered(&waiting, answer(&waiting, Decision::Deny, None), 5)
        .expect("denied")
        .next;
    assert_eq!(denied.status(5), Status::PushConfirmationRejected);
    assert_eq!(
        denied.allowed_actions(5),
        vec![Action::CancelAuthentication]
    );
    let (_, pick) = push_pick(&denied.id);
    assert!(matches!(
        apply(&denied, Event::SelectDevice { device, pick }, &ctx(6)),
        Err(FlowError::NotAllowed { .. })
    ));
    let failed = apply(&denied, Event::Cancel, &ctx(7))
        .expect("canceled")
        .next;
    assert_eq!(failed.status(7), Status::Failed);
}

#[test]
fn only_the_asked_device_answers_the_current_request() {
    let device = DeviceId::generate();
    let waiting = oob_waiting(&device);
    let push = waiting.push().expect("waiting").clone();
    let other = DeviceId::generate();
    let wrong_device = DeviceAnswer::signed(
        &push.auth_id,
        &other,
        Decision::Approve,
        waiting.params.digest(),
        None,
    );
    assert_eq!(
        answered(&waiting, wrong_device, 1).err(),
        Some(FlowError::NotPending)
    );
    let stale = DeviceAnswer::signed(
        &AuthId::generate(&waiting.id),
        &device,
        Decision::Approve,
        waiting.params.digest(),
        None,
    );
    assert_eq!(
        answered(&waiting, stale, 1).err(),
        Some(FlowError::NotPending)
    );
}

#[test]
fn pushes_are_capped_per_flow() {
    let device = DeviceId::generate();
    let mut current = oob_waiting(&device);
    for _ in 0..2 {
        let (_, pick) = push_pick(&current.id);
        let event = Event::SelectDevice {
            device: device.clone(),
            pick,
        };
        current = apply(&current, event, &ctx(0)).expect("pushed").next;
    }
    let (_, pick) = push_pick(&current.id);
    assert_eq!(
        apply(&current, Event::SelectDevice { device, pick }, &ctx(0)).err(),
        Some(FlowError::TooManyPushes)
    );
}

#[test]
fn unknown_devices_cannot_be_selected_and_removing_the_last_fails_the_flow() {
    let device = DeviceId::generate();
    let start = oob::start(
        head(&[device.clone(), DeviceId::generate()]),
        oob::Start::default(),
        &ctx(0),
    )
    .expect("starts")
    .next;
    assert_eq!(start.status(0), Status::DeviceSelectionRequired);
    let (_, pick) = push_pick(&start.id);
    let unknown = Event::SelectDevice {
        device: DeviceId::generate(),
        pick,
    };
    assert_eq!(
        apply(&start, unknown, &ctx(0)).err(),
        Some(FlowError::UnknownDevice)
    );
    let empty = apply(&start, Event::DevicesChanged { devices: vec![] }, &ctx(0))
        .expect("changed")
        .next;
    assert_eq!(empty.status(0), Status::MfaFailed);
}

#[test]
fn wrong_passcodes_lock_the_flow_out() {
    let device = DeviceId::generate();
    let mut head = head(std::slice::from_ref(&device));
    head.devices[0].otp_enabled = true;
    let start = oob::Start {
        first: Some(FirstPick::Reached {
            device: device.clone(),
            pick: Box::new(Pick::Code {
                sent: None,
                message: None,
            }),
        }),
        ..oob::Start::default()
    };
    let mut flow = oob::start(head, start, &ctx(0)).expect("starts").next;
    assert_eq!(flow.status(0), Status::OtpRequired);
    for left in [2u32, 1] {
        let wrong = Event::OtpChecked {
            device: device.clone(),
            passed: false,
            pairing: None,
        };
        flow = apply(&flow, wrong, &ctx(0)).expect("counted").next;
        assert_eq!(flow.status(0), Status::OtpRequired);
        assert_eq!(3 - flow.otp_failures, left);
    }
    let last = Event::OtpChecked {
        device,
        passed: false,
        pairing: None,
    };
    let locked = apply(&flow, last, &ctx(0)).expect("locked").next;
    assert_eq!(locked.status(0), Status::MfaFailed);
}

#[test]
fn registration_issues_its_key_with_the_flow_and_completes_on_pairing() {
    let offer = PairingOffer {
        pairing_key: "R".repeat(20),
        expires_at_ms: 1000,
    };
    let transition = registration::start(head(&[]), None, offer.clone());
    assert!(
        matches!(transition.effects.as_slice(), [Effect::IssuePairingKey(issued)] if *issued == offer)
    );
    let waiting = transition.next;
    assert_eq!(waiting.status(0), Status::MobileActivationRequired);
    let device = phone(&DeviceId::generate());
    let paired = apply(
        &waiting,
        Event::DevicePaired {
            device: device.clone(),
        },
        &ctx(10),
    )
    .expect("paired")
    .next;
    assert_eq!(paired.status(10), Status::Completed);
    assert_eq!(
        paired.completed_approval().map(|approval| approval.method),
        Some(ApprovalMethod::Registration)
    );
    // Too late: the key expired and the registration failed.
    assert!(apply(&waiting, Event::DevicePaired { device }, &ctx(1000)).is_err());
    let canceled = apply(&waiting, Event::Cancel, &ctx(10)).expect("canceled");
    assert!(
        matches!(canceled.effects.as_slice(), [Effect::WithdrawPairingKey(key)] if *key == offer.pairing_key)
    );
}

#[test]
fn device_authorization_completes_only_for_its_nonce() {
    let flow = device_authorization::start(head(&[]), None, "nonce".into()).next;
    assert_eq!(flow.status(0), Status::MobilePairingRequired);
    let device = phone(&DeviceId::generate());
    let other = Event::DeviceAuthorized {
        device: device.clone(),
        nonce: "other".into(),
    };
    assert_eq!(
        apply(&flow, other, &ctx(0)).err(),
        Some(FlowError::NotPending)
    );
    let right = Event::DeviceAuthorized {
        device,
        nonce: "nonce".into(),
    };
    let done = apply(&flow, right, &ctx(0)).expect("authorized").next;
    assert_eq!(done.status(0), Status::Completed);
    assert_eq!(
        done.completed_approval().map(|approval| approval.method),
        Some(ApprovalMethod::DeviceAuthorization)
    );
}

fn qr_codes(step_ms: u64) -> qr::QrCodes {
    qr::QrCodes {
        secret: "c2VjcmV0".into(),
        handle: "K7QM".into(),
        step_ms,
        spent_step: None,
    }
}

#[test]
fn qr_scan_select_silent_push_then_approval() {
    // Steps of 50 ms: a code of step 0 works until 100.
    let flow = qr::start(head(&[]), None, qr_codes(50)).next;
    assert_eq!(flow.status(0), Status::AuthenticationCodeResponseRequired);
    assert!(!flow.allowed_actions(0).contains(&Action::SelectDevice));
    let device = DeviceId::generate();
    let alice = UserId::parse("alice").expect("valid");
    let scan = |flow: &Flow, step: u64, now| {
        apply(
            flow,
            Event::QrScanned {
                device: device.clone(),
                step,
                users: vec![alice.clone()],
                selection_ms: 1000,
            },
            &ctx(now),
        )
    };
    assert_eq!(
        scan(&flow, 1, 10).err(),
        Some(FlowError::QrCodeUnknown),
        "not yet shown"
    );
    assert_eq!(scan(&flow, 0, 100).err(), Some(FlowError::QrCodeExpired));
    let claimed = scan(&flow, 0, 10).expect("scanned").next;
    assert_eq!(scan(&claimed, 0, 11).err(), Some(FlowError::QrCodeUsed));
    let auth_id = AuthId::generate(&claimed.id);
    let select = |step: Option<u64>| {
        apply(
            &claimed,
            Event::QrUserSelected {
                device: phone(&device),
                user: alice.clone(),
                step,
                verify_with: Some(auth_id.clone()),
            },
            &ctx(20),
        )
    };
    assert_eq!(
        select(Some(1)).err(),
        Some(FlowError::QrCodeUnknown),
        "another code"
    );
    let selected = select(Some(0)).expect("selected");
    assert!(
        matches!(selected.effects.as_slice(), [Effect::SendPush { auth_id: sent, .. }] if *sent == auth_id)
    );
    let silent = selected.next;
    assert_eq!(silent.user_id, alice);
    assert!(silent.push().is_some_and(|push| push.silent));
    let asked = answered(&silent, answer(&silent, Decision::Approve, None), 30)
        .expect("key answered")
        .next;
    assert!(asked.push().is_some_and(|push| !push.silent));
    let approved = answered(&asked, answer(&asked, Decision::Approve, None), 40)
        .expect("approved")
        .next;
    assert_eq!(approved.status(40), Status::MfaCompleted);
}

#[test]
fn qr_codes_move_with_time_and_a_claim_spends_its_step() {
    let codes = qr_codes(30_000);
    assert_eq!(codes.step_at(59_999), 1);
    assert_eq!(codes.next_code_at_ms(59_999), 60_000);
    assert_eq!(
        codes.expires_at_ms(59_999),
        90_000,
        "the next step still accepts it"
    );
    let secret = b"secret";
    let (one, two) = (qr::token("F", secret, 1), qr::token("F", secret, 2));
    assert_ne!(one, two);
    assert!(one.starts_with("F.1."));
    assert_ne!(
        qr::short_code("K7QM", secret, 1),
        qr::short_code("K7QM", secret, 2)
    );
    assert_ne!(
        qr::short_code("K7QM", secret, 1),
        qr::short_code("K7QM", b"other", 1)
    );

    // A shared device's selection expires: the page shows codes again, but none of the
    // claimed step or before.
    let device = DeviceId::generate();
    let users = vec![
        UserId::parse("alice").expect("valid"),
        UserId::parse("bob").expect("valid"),
    ];
    let flow = qr::start(head(&[]), None, codes).next;
    let scan = |flow: &Flow, step: u64, now| {
        apply(
            flow,
            Event::QrScanned {
                device: device.clone(),
                step,
                users: users.clone(),
                selection_ms: 1000,
            },
            &ctx(now),
        )
    };
    let claimed = scan(&flow, 1, 60_000)
        .expect("the previous step, once")
        .next;
    assert!(matches!(
        claimed.view(),
        View::QrCode {
            claimed_until_ms: Some(61_000),
            ..
        }
    ));
    assert_eq!(
        scan(&claimed, 2, 60_500).err(),
        Some(FlowError::QrCodeUsed),
        "selection waits"
    );
    assert_eq!(
        scan(&claimed, 1, 61_000).err(),
        Some(FlowError::QrCodeUsed),
        "spent"
    );
    assert!(
        scan(&claimed, 2, 61_000).is_ok(),
        "a newer code claims it again"
    );
}

#[test]
fn ciba_grants_once_and_slows_down_early_polls() {
    let device = DeviceId::generate();
    let mut head = head(std::slice::from_ref(&device));
    head.ciba = Some(ciba::CibaRequest {
        client_id: "rp".into(),
        scopes: vec!["openid".into()],
        binding_message: None,
        acr_values: None,
        delivery_mode: crate::config::DeliveryMode::Poll,
        notification_token: None,
        interval_secs: 5,
        last_poll_ms: None,
        profile: None,
    });
    let (_, pick) = push_pick(&head.id);
    let waiting = ciba::start(head, device, pick, 60_000, &ctx(0))
        .expect("starts")
        .next;
    assert_eq!(ciba::grant(&waiting, 0), Ok(ciba::Grant::Pending));
    let polled = apply(&waiting, Event::TokenRequested, &ctx(0))
        .expect("polled")
        .next;
    assert_eq!(ciba::grant(&polled, 1000), Ok(ciba::Grant::SlowDown));
    let slowed = apply(&polled, Event::TokenRequested, &ctx(1000))
        .expect("slowed")
        .next;
    assert_eq!(
        slowed.ciba.as_ref().map(|request| request.interval_secs),
        Some(10)
    );
    let approved =
        answered(&slowed, answer(&slowed, Decision::Approve, None), 2000).expect("approved");
    assert!(
        approved
            .effects
            .iter()
            .any(|effect| matches!(effect, Effect::Notify))
    );
    let approved = approved.next;
    assert_eq!(ciba::grant(&approved, 20_000), Ok(ciba::Grant::Approved));
    let redeemed = apply(&approved, Event::TokenRequested, &ctx(20_000))
        .expect("redeemed")
        .next;
    assert_eq!(
        apply(&redeemed, Event::TokenRequested, &ctx(20_001)).err(),
        Some(FlowError::AlreadyPickedUp)
    );
    assert_eq!(ciba::grant(&waiting, 60_000), Ok(ciba::Grant::Expired));
}

#[test]
fn new_device_is_admitted_only_after_the_primary_and_then_pairs() {
    let primary = DeviceId::generate();
    let head = head(std::slice::from_ref(&primary));
    let (_, pick) = push_pick(&head.id);
    let admission = new_device::Admission::ByPrimary(Some(FirstPick::Reached {
        device: primary.clone(),
        pick: Box::new(pick),
    }));
    let waiting = new_device::start(head, None, admission, &ctx(0))
        .expect("starts")
        .next;
    assert_eq!(waiting.status(0), Status::PushConfirmationWaiting);
    let admitted =
        answered(&waiting, answer(&waiting, Decision::Approve, None), 10).expect("admitted");
    assert!(
        admitted
            .effects
            .iter()
            .any(|effect| matches!(effect, Effect::IssuePairingKey(_)))
    );
    let admitted = admitted.next;
    assert_eq!(admitted.status(10), Status::MobileActivationRequired);
    let paired = apply(
        &admitted,
        Event::DevicePaired {
            device: phone(&DeviceId::generate()),
        },
        &ctx(20),
    )
    .expect("paired")
    .next;
    assert_eq!(paired.status(20), Status::Completed);
    let none = new_device::Admission::ByPrimary(None);
    let failed = new_device::start(self::head(&[]), None, none, &ctx(0))
        .expect("starts")
        .next;
    assert_eq!(failed.status(0), Status::MfaFailed);
}

/// Every kind that takes a device decision, waiting for one with number matching on.
fn waiting_for_a_decision() -> Vec<(&'static str, Flow)> {
    let device = DeviceId::generate();
    let push = |head: &Head| Push {
        auth_id: AuthId::generate(&head.id),
        device_id: device.clone(),
        sent_at_ms: 0,
        expires_at_ms: 1000,
        silent: false,
        number: Some(42),
        choices: vec![17, 42, 93],
    };
    let one = || head(std::slice::from_ref(&device));
    let mut with_ciba = one();
    with_ciba.ciba = Some(ciba::CibaRequest {
        client_id: "rp".into(),
        scopes: vec!["openid".into()],
        binding_message: None,
        acr_values: None,
        delivery_mode: crate::config::DeliveryMode::Poll,
        notification_token: None,
        interval_secs: 5,
        last_poll_ms: None,
        profile: None,
    });
    let oob = one();
    let transaction = one();
    let qr = one();
    let new_device = one();
    vec![
        ("oob", {
            let push = push(&oob);
            oob.into_flow(FlowState::Oob(oob::State::PushWaiting { push }))
        }),
        ("transaction", {
            let push = push(&transaction);
            transaction.into_flow(FlowState::Transaction(transaction::State::PushWaiting {
                push,
            }))
        }),
        ("ciba", {
            let push = push(&with_ciba);
            with_ciba.into_flow(FlowState::Ciba(ciba::State::PushWaiting { push }))
        }),
        ("qr", {
            let push = push(&qr);
            qr.into_flow(FlowState::Qr(qr::State::PushWaiting { push }))
        }),
        ("new_device", {
            let push = push(&new_device);
            new_device.into_flow(FlowState::NewDevice(new_device::State::PushWaiting {
                push,
            }))
        }),
    ]
}

#[test]
fn every_kind_refuses_a_wrong_number_and_a_proof_over_other_parameters() {
    for (kind, flow) in waiting_for_a_decision() {
        let wrong_number = answered(&flow, answer(&flow, Decision::Approve, Some(17)), 10)
            .unwrap_or_else(|error| panic!("{kind}: {error}"))
            .next;
        assert_eq!(
            wrong_number.status(10),
            Status::PushConfirmationRejected,
            "{kind}: a wrong number is a denial"
        );
        assert_eq!(
            wrong_number.failure_reason(),
            Some("the wrong number was picked on the device"),
            "{kind}"
        );
        let no_number = answered(&flow, answer(&flow, Decision::Approve, None), 10)
            .unwrap_or_else(|error| panic!("{kind}: {error}"))
            .next;
        assert_eq!(
            no_number.status(10),
            Status::PushConfirmationRejected,
            "{kind}"
        );

        let push = flow.push().expect("waiting");
        let other_params = DeviceAnswer::signed(
            &push.auth_id,
            &push.device_id,
            Decision::Approve,
            DynamicParams::default().digest(),
            Some(42),
        );
        assert!(
            matches!(
                answered(&flow, other_params, 10),
                Err(FlowError::BadProof(_))
            ),
            "{kind}: a proof over other parameters is refused"
        );

        let right = answered(&flow, answer(&flow, Decision::Approve, Some(42)), 10)
            .unwrap_or_else(|error| panic!("{kind}: {error}"))
            .next;
        assert!(
            matches!(
                right.status(10),
                Status::MfaCompleted | Status::MobileActivationRequired
            ),
            "{kind}: the right number approves, got {:?}",
            right.status(10)
        );
    }
}
