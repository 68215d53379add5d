//! QR code sign-on against the store: a flow's codes (a sealed secret and a handle,
//! made at start), the live code a `GET` shows (derived, never written), the trusted
//! device's scan of a token or of a typed short code, and the person's pick on a shared
//! device. The machine is [`super::qr`].

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::Rng;
use subtle::ConstantTimeEq;

use super::qr::{self, QrCodes};
use super::service::summaries;
use super::{Event, Flow, FlowKind, FlowState, View};
use crate::device::{self, Device};
pub use assent_proto::device::{QrOutcome, QrStatus, QrUser};

use crate::error::{AdapterError, FlowError};
use crate::ids::{AuthId, FlowId};
use crate::keys;
use crate::store::Ttl;
use crate::user::UserId;
use crate::{Adapter, user};

/// Typed short codes tried per flow, over the flow's life: five wrong guesses at 20 bits
/// (two steps accepted) leave an attacker about one chance in 100,000.
pub const SHORT_CODE_TRIES_PER_FLOW: u32 = 5;
/// Typed short codes tried per device within [`SHORT_CODE_DEVICE_WINDOW`] (against a
/// device trying the codes of many flows).
pub const SHORT_CODE_TRIES_PER_DEVICE: u32 = 10;
/// The window of [`SHORT_CODE_TRIES_PER_DEVICE`].
pub const SHORT_CODE_DEVICE_WINDOW: Duration = Duration::from_secs(15 * 60);

/// What the page shows now: derived from the flow's secret and the time, never stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LiveQr {
    /// The token the QR code carries.
    pub token: String,
    /// What the QR code encodes (`<scheme>://assent?authentication_token=<token>`).
    pub uri: String,
    /// The short code a person types into the app when the camera cannot scan.
    pub code: String,
    /// When the code stops working.
    pub expires_at_ms: u64,
}

/// What a device presented: a token read from the QR code, or a short code typed in.
enum Presented {
    Token {
        flow: FlowId,
        step: u64,
        mac: String,
    },
    Short(String),
}

fn presented(raw: &str) -> Result<Presented, AdapterError> {
    let unknown = AdapterError::NotFound("QR code");
    let mut parts = raw.trim().splitn(3, '.');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(flow), Some(step), Some(mac)) => Ok(Presented::Token {
            flow: FlowId::parse(flow).ok_or(unknown)?,
            step: step
                .parse()
                .map_err(|_| AdapterError::NotFound("QR code"))?,
            mac: mac.to_owned(),
        }),
        (Some(_), Some(_), None) => Err(unknown),
        _ => qr::normalise_short_code(raw)
            .map(Presented::Short)
            .ok_or(unknown),
    }
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

/// The QR codes of a flow in its current state, while it shows or just claimed one.
fn codes_of(flow: &Flow) -> Option<(&QrCodes, Option<u64>)> {
    match flow.view() {
        View::QrCode {
            codes,
            claimed_until_ms,
        } => Some((codes, claimed_until_ms)),
        _ => None,
    }
}

impl Adapter {
    /// New codes for `flow`: a fresh secret (sealed when a data key is configured) and a
    /// handle registered for the flow's life, so that a short code finds its flow.
    pub(crate) async fn new_qr_codes(
        &self,
        flow: &FlowId,
        flow_ttl: Duration,
    ) -> Result<QrCodes, AdapterError> {
        let secret: [u8; 32] = rand::rng().random();
        let secret = crate::sealing::seal(self.data_key(), &URL_SAFE_NO_PAD.encode(secret))?;
        // About a million handles: a collision with a live flow's is rare, and retried.
        for _ in 0..8 {
            let handle: String = {
                let mut rng = rand::rng();
                (0..qr::HANDLE_LEN)
                    .map(|_| char::from(qr::SHORT_CODE_ALPHABET[rng.random_range(0..32)]))
                    .collect()
            };
            let key = keys::qr_handle(&handle);
            if self
                .store()
                .insert(&key, flow.as_str().as_bytes(), Ttl::Set(flow_ttl))
                .await?
            {
                return Ok(QrCodes {
                    secret,
                    handle,
                    step_ms: (self.config().policy.qr_token_ttl_secs * 1000 / 2).max(1),
                    spent_step: None,
                });
            }
        }
        Err(AdapterError::internal(
            "no free QR handle after eight tries",
        ))
    }

    fn qr_secret(&self, codes: &QrCodes) -> Result<Vec<u8>, AdapterError> {
        let opened = crate::sealing::open(self.data_key(), &codes.secret)?;
        URL_SAFE_NO_PAD
            .decode(opened)
            .map_err(|_| AdapterError::internal("a QR secret is not base64url"))
    }

    /// What the QR code encodes.
    pub fn qr_uri(&self, token: &str) -> String {
        format!(
            "{}://assent?authentication_token={token}",
            self.config().policy.qr_app_scheme
        )
    }

    /// The code `flow` shows now (none once claimed, until an unfinished selection expires,
    /// and none outside the QR states). A read: computed, never written.
    pub fn live_qr(&self, flow: &Flow, now_ms: u64) -> Result<Option<LiveQr>, AdapterError> {
        let Some((codes, claimed_until_ms)) = codes_of(flow) else {
            return Ok(None);
        };
        if claimed_until_ms.is_some_and(|until| until > now_ms) {
            return Ok(None);
        }
        let secret = self.qr_secret(codes)?;
        let step = codes.step_at(now_ms);
        let token = qr::token(flow.id.as_str(), &secret, step);
        Ok(Some(LiveQr {
            uri: self.qr_uri(&token),
            code: qr::short_code(&codes.handle, &secret, step),
            token,
            expires_at_ms: codes.expires_at_ms(now_ms),
        }))
    }

    /// The flow a presented code names, and the step it is a code of; `None` as the step
    /// when it is of no step the flow could accept. A typed short code counts against the
    /// device's and the flow's limits before it is compared.
    async fn identify(
        &self,
        device: &Device,
        raw: &str,
    ) -> Result<(FlowId, Option<u64>), AdapterError> {
        let presented = presented(raw)?;
        let flow_id = match &presented {
            Presented::Token { flow, .. } => flow.clone(),
            Presented::Short(code) => {
                self.within_limit(
                    &keys::qr_device_code_tries(&device.id),
                    SHORT_CODE_TRIES_PER_DEVICE,
                    SHORT_CODE_DEVICE_WINDOW.as_secs(),
                    || {
                        FlowError::Throttled(
                            "too many QR codes typed on this device; try again later".to_owned(),
                        )
                    },
                )
                .await?;
                let (handle, _) = code.split_at(qr::HANDLE_LEN);
                let record = self
                    .store()
                    .get(&keys::qr_handle(handle))
                    .await?
                    .ok_or(AdapterError::NotFound("QR code"))?;
                let flow = std::str::from_utf8(&record.value)
                    .ok()
                    .and_then(FlowId::parse)
                    .ok_or(AdapterError::NotFound("QR code"))?;
                self.within_limit(
                    &keys::qr_code_tries(&flow),
                    SHORT_CODE_TRIES_PER_FLOW,
                    self.config().policy.flow_ttl_secs,
                    || {
                        FlowError::Throttled(
                            "too many wrong codes for this QR sign-on; scan the code instead"
                                .to_owned(),
                        )
                    },
                )
                .await?;
                flow
            }
        };
        let (flow, _) = self.load_any(&flow_id).await?;
        if flow.kind() != FlowKind::Qr {
            return Err(AdapterError::NotFound("QR code"));
        }
        let Some((codes, _)) = codes_of(&flow) else {
            return Ok((flow_id, None));
        };
        let secret = self.qr_secret(codes)?;
        let same =
            |expected: &str, given: &str| bool::from(expected.as_bytes().ct_eq(given.as_bytes()));
        let step = match presented {
            Presented::Token { step, mac, .. } => {
                let expected = qr::token(flow_id.as_str(), &secret, step);
                let given = format!("{flow_id}.{step}.{mac}");
                if !same(&expected, &given) {
                    return Err(AdapterError::NotFound("QR code"));
                }
                Some(step)
            }
            Presented::Short(code) => {
                // The steps a typed code may be of: the one shown, the one before, and
                // the one a waiting selection claimed.
                let current = codes.step_at(self.clock().now_ms());
                let candidates = [Some(current), current.checked_sub(1), codes.spent_step];
                let found = candidates
                    .into_iter()
                    .flatten()
                    .find(|step| same(&qr::short_code(&codes.handle, &secret, *step), &code));
                if found.is_none() {
                    return Err(AdapterError::NotFound("QR code"));
                }
                found
            }
        };
        Ok((flow_id, step))
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

    /// A trusted device scanned a code (or the person typed its short code): once, while
    /// it works.
    pub async fn scan_qr(&self, device: &Device, code: &str) -> Result<QrOutcome, AdapterError> {
        let (flow_id, step) = self.identify(device, code).await?;
        let Some(step) = step else {
            return Err(AdapterError::Conflict(
                "the QR code was already used".to_owned(),
            ));
        };
        let users: Vec<UserId> = device.users().cloned().collect();
        let scanned = Event::QrScanned {
            device: device.id.clone(),
            step,
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

    /// The person picked a user on the shared device that scanned the code (presented
    /// again, as read or as typed).
    pub async fn select_qr_user_by_token(
        &self,
        device: &Device,
        code: &str,
        user: &str,
    ) -> Result<QrOutcome, AdapterError> {
        let user = UserId::parse(user).map_err(AdapterError::Invalid)?;
        let (flow_id, step) = self.identify(device, code).await?;
        let Some(step) = step else {
            return Err(AdapterError::Conflict(
                FlowError::QrSelectionClosed("no user selection is waiting").to_string(),
            ));
        };
        self.select_qr_user(device, &flow_id, &user, Some(step))
            .await
    }

    async fn select_qr_user(
        &self,
        device: &Device,
        flow_id: &FlowId,
        user: &UserId,
        step: Option<u64>,
    ) -> Result<QrOutcome, AdapterError> {
        let approval_needed = self.config().policy.qr_user_approval;
        let default = device::default_for_user(self.store(), user).await?;
        let summary = summaries(std::slice::from_ref(device), default.as_ref()).remove(0);
        let selected = Event::QrUserSelected {
            device: summary,
            user: user.clone(),
            step,
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use josekit::jwk::alg::ec::{EcCurve, EcKeyPair};

    use super::*;
    use crate::clock::{Clock, ManualClock};
    use crate::device_key::PublicDeviceKey;
    use crate::flow::{Application, StartFlow, Status};

    const STEP: Duration = Duration::from_secs(30);

    async fn adapter(clock: Arc<ManualClock>) -> Adapter {
        // A one-minute code lifetime: a new code every 30 s, each working for two steps.
        let conf = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../conf/assent.toml");
        let figment = crate::config::Config::figment(&conf)
            .merge(("store", "memory"))
            .merge(("policy.qr_token_ttl_secs", 60))
            .merge(("policy.qr_user_approval", false));
        let config = crate::config::Config::from_figment(figment).expect("config");
        let metrics = crate::metrics::Metrics::new().expect("metrics");
        let failures = metrics.deliveries_failed.clone();
        let delivery =
            crate::notify::Delivery::new(None, None, None, None, Duration::from_secs(1), failures);
        Adapter::start(config, metrics, delivery, clock)
            .await
            .expect("adapter")
    }

    fn phone(user: &str) -> Device {
        let jwk = EcKeyPair::generate(EcCurve::P256)
            .expect("key")
            .to_jwk_public_key();
        Device {
            id: crate::ids::DeviceId::generate(),
            user_id: UserId::parse(user).expect("user"),
            name: "Phone".into(),
            os: "Android".into(),
            os_version: "15".into(),
            model: "Pixel".into(),
            nickname: None,
            public_key: PublicDeviceKey::parse(jwk.as_ref()).expect("public key"),
            paired_at: 0,
            paired_at_ms: 0,
            also_paired: Vec::new(),
            one_time: false,
            one_time_flow: None,
            otp_seed: None,
        }
    }

    async fn qr_flow(adapter: &Adapter) -> Flow {
        let request = StartFlow {
            kind: FlowKind::Qr,
            user: None,
            application: Application {
                name: "Demo Bank".into(),
                ..Application::default()
            },
            client_ip: None,
            client_device: None,
            dynamic_params: Default::default(),
            template_id: None,
            return_url: None,
            one_time_device: None,
        };
        let flow = adapter.start_flow("fed", request).await.expect("started");
        // The browser on the page: only then is there a code to show.
        let entered = crate::flow::FlowAction::Authenticate {
            mobile_payload: None,
        };
        let (flow, _) = adapter
            .act(flow.id.as_str(), None, entered)
            .await
            .expect("entered");
        flow
    }

    async fn shown(adapter: &Adapter, flow: &Flow) -> LiveQr {
        let flow = adapter.load_versioned(&flow.id).await.expect("flow").0;
        let now = adapter.clock().now_ms();
        adapter.live_qr(&flow, now).expect("live").expect("a code")
    }

    #[tokio::test]
    async fn a_get_after_the_step_shows_a_new_code_and_the_old_one_works_once_more() {
        let clock = Arc::new(ManualClock::at_secs(1_700_000_010));
        let adapter = adapter(clock.clone()).await;
        let flow = qr_flow(&adapter).await;
        let first = shown(&adapter, &flow).await;
        let version = adapter.load_any(&flow.id).await.expect("flow").1;
        assert_eq!(
            shown(&adapter, &flow).await,
            first,
            "the same step shows the same code"
        );

        clock.advance(STEP);
        let second = shown(&adapter, &flow).await;
        assert_ne!(second.token, first.token);
        assert_ne!(second.code, first.code);
        assert!(second.expires_at_ms > first.expires_at_ms);
        assert_eq!(
            adapter.load_any(&flow.id).await.expect("flow").1,
            version,
            "showing codes never writes"
        );

        // The previous code still works (scanned just as the page moved on), once.
        let alice = phone("alice");
        let outcome = adapter
            .scan_qr(&alice, &first.token)
            .await
            .expect("grace use");
        assert_eq!(outcome.status, QrStatus::Completed);
        let bob = phone("bob");
        for code in [&first.token, &second.token] {
            let refused = adapter.scan_qr(&bob, code).await.expect_err("used");
            assert!(matches!(refused, AdapterError::Conflict(_)), "{refused:?}");
        }
        let done = adapter.load_versioned(&flow.id).await.expect("flow").0;
        assert_eq!(done.status(clock.now_ms()), Status::Completed);
        assert_eq!(done.user_id.as_str(), "alice");
    }

    #[tokio::test]
    async fn a_code_two_steps_old_is_refused() {
        let clock = Arc::new(ManualClock::at_secs(1_700_000_010));
        let adapter = adapter(clock.clone()).await;
        let flow = qr_flow(&adapter).await;
        let first = shown(&adapter, &flow).await;
        clock.advance(STEP * 2);
        let alice = phone("alice");
        for old in [&first.token, &first.code] {
            let refused = adapter.scan_qr(&alice, old).await.expect_err("expired");
            assert!(
                matches!(
                    refused,
                    AdapterError::Conflict(_) | AdapterError::NotFound(_)
                ),
                "{refused:?}"
            );
        }
        let live = shown(&adapter, &flow).await;
        assert_eq!(
            adapter
                .scan_qr(&alice, &live.token)
                .await
                .expect("live")
                .status,
            QrStatus::Completed
        );
    }

    #[tokio::test]
    async fn the_short_code_works_like_a_scan_and_wrong_ones_are_limited() {
        let clock = Arc::new(ManualClock::at_secs(1_700_000_010));
        let adapter = adapter(clock.clone()).await;
        let alice = phone("alice");

        // Typed as a person would: lower case, a space instead of the dash.
        let flow = qr_flow(&adapter).await;
        let code = shown(&adapter, &flow).await.code;
        assert_eq!(code.len(), 9);
        let typed = code.to_lowercase().replace('-', " ");
        assert_eq!(
            adapter.scan_qr(&alice, &typed).await.expect("typed").status,
            QrStatus::Completed
        );
        let again = adapter.scan_qr(&alice, &code).await.expect_err("once");
        assert!(matches!(again, AdapterError::Conflict(_)), "{again:?}");

        // Wrong codes for a flow: five are compared, then even the right one is refused.
        let flow = qr_flow(&adapter).await;
        let right = shown(&adapter, &flow).await.code;
        let handle = &right[..qr::HANDLE_LEN];
        let wrong: Vec<String> = ["0000", "1111", "2222", "3333", "4444", "5555"]
            .iter()
            .map(|guess| format!("{handle}-{guess}"))
            .filter(|guess| *guess != right)
            .take(5)
            .collect();
        let guesser = phone("mallory");
        for guess in &wrong {
            let refused = adapter.scan_qr(&guesser, guess).await.expect_err("wrong");
            assert!(matches!(refused, AdapterError::NotFound(_)), "{refused:?}");
        }
        let limited = adapter.scan_qr(&alice, &right).await.expect_err("limited");
        assert!(
            matches!(limited, AdapterError::Flow(FlowError::Throttled(_))),
            "{limited:?}"
        );
        // The QR code itself still works: the limit is on typing.
        let token = shown(&adapter, &flow).await.token;
        assert_eq!(
            adapter
                .scan_qr(&alice, &token)
                .await
                .expect("scanned")
                .status,
            QrStatus::Completed
        );
    }
}
