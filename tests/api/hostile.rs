//! Hostile input, generated: property tests (proptest) over every parser reachable from
//! the network — Authentication API content types and bodies, `mobilePayload`s, device
//! JWTs and decision proofs, CIBA forms, client assertions and request objects, Adapter API
//! flow starts with templates and dynamic parameters — and over the configuration loader.
//!
//! Each target starts one server on its own `redis-server` and sends every case over real
//! HTTP. A case passes when the server answered it (no panic, no dropped connection), with
//! a 4xx in that API's own convention, still answers `/healthz`, and left Redis as it was
//! (every key under the instance's prefix, and a SHA-1 of its `DUMP`, compared before and
//! after). A generator that can build a valid request says so in the case, and the check
//! then expects what that request legitimately writes instead.
//!
//! Cases per target: `PROPTEST_CASES`, else [`DEFAULT_CASES`]; `scripts/fuzz` runs 10,000.
//! `cargo test --test api hostile` runs only these. Failures are not persisted to files:
//! the minimal failing case is printed instead.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use assent_proto::authn::{
    ActionId, ActionRequest, AuthnState, DeviceChoice, EmailTarget, ErrorBody, MobilePayload,
    NicknameUpdate, PairingMethodChoice, PairingMethodRef, Passcode, PhoneTarget, StatusName,
};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use figment::Figment;
use proptest::collection::{btree_map, vec};
use proptest::prelude::*;
use proptest::sample::{Index, select};
use proptest::test_runner::{Config as ProptestConfig, TestCaseError, TestError, TestRunner};
use reqwest::header::HeaderValue;
use serde_json::{Value, json};

use crate::support::{
    Backend, FEDERATION, RedisServer, TestApp, oob_request, transfer_request, unique,
};

/// Cases per target when `PROPTEST_CASES` is not set: the normal suite's share.
const DEFAULT_CASES: u32 = 100;

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|cases| cases.parse().ok())
        .unwrap_or(DEFAULT_CASES)
}

type Checked = Result<(), TestCaseError>;

fn fail(message: impl Into<String>) -> TestCaseError {
    TestCaseError::fail(message.into())
}

/// Runs `check` on `cases()` values of `strategy`; on failure, panics with the shrunk case.
fn run<S>(name: &str, strategy: S, check: impl Fn(S::Value) -> Checked)
where
    S: Strategy,
    S::Value: Debug,
{
    let config = ProptestConfig {
        cases: cases(),
        failure_persistence: None,
        max_shrink_iters: 200,
        ..ProptestConfig::default()
    };
    let started = Instant::now();
    let mut runner = TestRunner::new(config);
    match runner.run(&strategy, check) {
        Ok(()) => eprintln!(
            "hostile {name}: {} cases passed in {:.1?}",
            cases(),
            started.elapsed()
        ),
        Err(TestError::Fail(reason, case)) => {
            panic!("hostile {name}: {reason}\nminimal failing case: {case:#?}")
        }
        Err(TestError::Abort(reason)) => panic!("hostile {name}: aborted: {reason}"),
    }
}

// ---------------------------------------------------------------------------------------
// One server per target, and what it keeps in Redis.

/// Keys that expire by themselves (replay markers written while setting up): their going
/// away is not a change a case made.
const EXPIRING: [&str; 3] = ["jti:{", "app-jti:{", "client-jti:{"];

/// Every key under a prefix with a SHA-1 of its whole value (a versioned record's version
/// included: a refused request must not even rewrite a record as it was), sorted: one
/// round trip.
const FINGERPRINT: &str = "local keys = redis.call('KEYS', ARGV[1]) table.sort(keys) \
    local out = {} for _, key in ipairs(keys) do local value = redis.call('DUMP', key) \
    out[#out + 1] = key .. ' ' .. (value and redis.sha1hex(value) or '-') end \
    return table.concat(out, '\\n')";

/// A server on its own Redis, the runtime it runs on, and the store as last seen.
struct Target {
    runtime: tokio::runtime::Runtime,
    redis: RedisServer,
    app: TestApp,
    baseline: Mutex<BTreeMap<String, String>>,
    statuses: Mutex<BTreeMap<u16, usize>>,
}

/// Settings under which nothing in the store expires during a long run, so that a key
/// going away is a case's doing.
fn long_lived() -> Figment {
    Figment::new()
        .merge(("policy.flow_ttl_secs", 86_400))
        .merge(("policy.push_timeout_secs", 3_600))
        .merge(("policy.pairing_key_ttl_secs", 86_400))
        .merge(("mfa.push_limit", 0))
        .merge(("http.long_poll_max_secs", 1))
}

impl Target {
    fn start(overrides: Figment) -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a runtime");
        let redis = RedisServer::start();
        let app = runtime.block_on(TestApp::spawn_with(
            Backend::Redis(&redis),
            &unique("hostile"),
            long_lived().merge(overrides),
        ));
        Self {
            runtime,
            redis,
            app,
            baseline: Mutex::default(),
            statuses: Mutex::default(),
        }
    }

    fn block_on<T>(&self, future: impl Future<Output = T>) -> T {
        self.runtime.block_on(future)
    }

    /// Every key of this instance, without its prefix, with a hash of its value.
    fn keys(&self) -> BTreeMap<String, String> {
        let pattern = format!("{}*", self.app.key_prefix);
        let reply = self.redis.command(&["EVAL", FINGERPRINT, "0", &pattern]);
        assert!(
            reply.starts_with('$'),
            "the fingerprint script ran: {reply}"
        );
        let body = reply
            .split_once("\r\n")
            .map(|(_, body)| body.trim_end_matches("\r\n"))
            .unwrap_or_default();
        body.lines()
            .filter_map(|line| line.rsplit_once(' '))
            .map(|(key, hash)| {
                let key = key.strip_prefix(&self.app.key_prefix).unwrap_or(key);
                (key.to_owned(), hash.to_owned())
            })
            .collect()
    }

    /// Takes the store as it is now as what later cases must leave alone.
    fn settle(&self) {
        *self.baseline.lock().unwrap() = self.keys();
    }

    /// Fails if a key was added, changed or removed since the baseline, except keys
    /// starting with one of `spared` (written by the valid part of a request) and replay
    /// markers expiring. Then the store as it is becomes the baseline.
    fn unchanged(&self, spared: &[&str], answer: &Answer) -> Checked {
        let now = self.keys();
        let mut baseline = self.baseline.lock().unwrap();
        let spare = |key: &str| spared.iter().any(|prefix| key.starts_with(prefix));
        let mut changes = Vec::new();
        for (key, hash) in &now {
            match baseline.get(key) {
                None if !spare(key) => changes.push(format!("added {key}")),
                Some(before) if before != hash && !spare(key) => {
                    changes.push(format!("changed {key}"))
                }
                _ => {}
            }
        }
        for key in baseline.keys() {
            let expiring = EXPIRING.iter().any(|prefix| key.starts_with(prefix));
            if !now.contains_key(key) && !spare(key) && !expiring {
                changes.push(format!("removed {key}"));
            }
        }
        *baseline = now;
        if changes.is_empty() {
            Ok(())
        } else {
            Err(fail(format!(
                "state written: {}, answering {} {}",
                changes.join(", "),
                answer.status,
                answer.text()
            )))
        }
    }

    /// Sends a request; a dropped connection (a panicking handler) fails the case.
    async fn send(&self, request: reqwest::RequestBuilder) -> Result<Answer, TestCaseError> {
        let response = request
            .timeout(Duration::from_secs(20))
            .send()
            .await
            .map_err(|error| fail(format!("no answer (did the handler panic?): {error:?}")))?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response
            .bytes()
            .await
            .map_err(|error| fail(format!("the answer broke off: {error}")))?;
        *self.statuses.lock().unwrap().entry(status).or_default() += 1;
        if status >= 500 {
            return Err(fail(format!(
                "{status}: {}",
                String::from_utf8_lossy(&body)
            )));
        }
        Ok(Answer {
            status,
            content_type: headers
                .get("content-type")
                .and_then(|value| value.to_str().ok())
                .unwrap_or_default()
                .to_owned(),
            body: body.to_vec(),
        })
    }

    /// The server is still there.
    async fn alive(&self) -> Checked {
        let answer = self
            .send(self.app.http.get(self.app.url("/healthz")))
            .await?;
        if answer.status != 200 {
            return Err(fail(format!("/healthz answered {}", answer.status)));
        }
        Ok(())
    }

    fn report(&self, name: &str) {
        eprintln!(
            "hostile {name}: answers by status {:?}",
            self.statuses.lock().unwrap()
        );
    }
}

/// What came back.
#[derive(Debug)]
struct Answer {
    status: u16,
    content_type: String,
    body: Vec<u8>,
}

impl Answer {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    fn client_error(&self) -> Checked {
        if (400..500).contains(&self.status) {
            Ok(())
        } else {
            Err(fail(format!(
                "expected a 4xx, got {}: {}",
                self.status,
                self.text()
            )))
        }
    }

    /// The Authentication API's convention: the Ping error model, read into its typed
    /// struct (so an unknown code fails), with a message for the person, and no `status`
    /// (the widget would read one as a state).
    fn ping_error(&self) -> Checked {
        self.client_error()?;
        let body: ErrorBody = serde_json::from_slice(&self.body)
            .map_err(|error| fail(format!("not a Ping error ({error}): {}", self.text())))?;
        let raw: Value = serde_json::from_slice(&self.body).unwrap_or_default();
        if raw.get("status").is_some() || body.details.is_empty() || body.message.is_empty() {
            return Err(fail(format!(
                "a Ping error without detail: {}",
                self.text()
            )));
        }
        if body
            .details
            .iter()
            .any(|detail| detail.user_message.is_empty())
        {
            return Err(fail(format!(
                "a detail without userMessage: {}",
                self.text()
            )));
        }
        Ok(())
    }

    /// The Adapter, Device and Admin APIs' convention: `application/problem+json`.
    fn problem(&self) -> Checked {
        self.client_error()?;
        if self.content_type != "application/problem+json" {
            return Err(fail(format!(
                "{} is not a problem body: {}",
                self.content_type,
                self.text()
            )));
        }
        let body: Value = serde_json::from_slice(&self.body)
            .map_err(|error| fail(format!("not JSON ({error}): {}", self.text())))?;
        let ok = body["type"]
            .as_str()
            .is_some_and(|kind| kind.starts_with("urn:assent:problem:"))
            && body["title"].is_string()
            && body["detail"].is_string()
            && body["status"] == self.status;
        if ok {
            Ok(())
        } else {
            Err(fail(format!("a malformed problem: {}", self.text())))
        }
    }

    /// OAuth's convention: `{error, error_description}` as JSON, with a known code.
    fn oauth_error(&self) -> Checked {
        self.client_error()?;
        if !self.content_type.starts_with("application/json") {
            return Err(fail(format!("{} is not JSON", self.content_type)));
        }
        let body: assent_proto::ciba::ErrorBody = serde_json::from_slice(&self.body)
            .map_err(|error| fail(format!("not an OAuth error ({error}): {}", self.text())))?;
        if body
            .error_description
            .chars()
            .any(|c| !(' '..='~').contains(&c))
        {
            return Err(fail(format!(
                "error_description is not printable ASCII: {}",
                self.text()
            )));
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------
// Generators shared by the targets.

/// Text of any kind: printable, control characters, long, empty.
fn text() -> BoxedStrategy<String> {
    prop_oneof![
        4 => "[a-zA-Z0-9_.@+-]{0,24}",
        3 => "(?s).{0,40}",
        1 => Just(String::new()),
        1 => "[a-z]{200,300}",
    ]
    .boxed()
}

/// Any JSON value, a few levels deep.
fn json_value() -> BoxedStrategy<Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_filter_map("finite", |f| serde_json::Number::from_f64(f)
            .map(Value::Number)),
        text().prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..4).prop_map(Value::Array),
            btree_map("[a-zA-Z]{0,12}", inner, 0..4)
                .prop_map(|map| Value::Object(map.into_iter().collect())),
        ]
    })
    .boxed()
}

/// A change to a JSON document built from a real request shape.
#[derive(Clone, Debug)]
enum Mutation {
    Keep,
    /// The value at one member (of every member, in document order) becomes another.
    Replace(Index, Value),
    /// One member goes.
    Remove(Index),
    /// A member is added at the top.
    Insert(String, Value),
    /// The document is put in an array.
    Wrap,
}

fn mutation() -> BoxedStrategy<Mutation> {
    prop_oneof![
        2 => Just(Mutation::Keep),
        4 => (any::<Index>(), json_value()).prop_map(|(at, value)| Mutation::Replace(at, value)),
        2 => any::<Index>().prop_map(Mutation::Remove),
        1 => ("[a-zA-Z]{1,12}", json_value()).prop_map(|(name, value)| Mutation::Insert(name, value)),
        1 => Just(Mutation::Wrap),
    ]
    .boxed()
}

/// JSON pointers of every object member, in document order.
fn members(value: &Value, at: String, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (name, inner) in map {
                let pointer = format!("{at}/{}", name.replace('~', "~0").replace('/', "~1"));
                out.push(pointer.clone());
                members(inner, pointer, out);
            }
        }
        Value::Array(items) => {
            for (index, inner) in items.iter().enumerate() {
                members(inner, format!("{at}/{index}"), out);
            }
        }
        _ => {}
    }
}

fn mutate(mut value: Value, mutation: &Mutation) -> Value {
    let mut pointers = Vec::new();
    members(&value, String::new(), &mut pointers);
    match mutation {
        Mutation::Keep => {}
        Mutation::Replace(at, replacement) if !pointers.is_empty() => {
            let pointer = &pointers[at.index(pointers.len())];
            if let Some(slot) = value.pointer_mut(pointer) {
                *slot = replacement.clone();
            }
        }
        Mutation::Remove(at) if !pointers.is_empty() => {
            let pointer = &pointers[at.index(pointers.len())];
            let (parent, name) = pointer.rsplit_once('/').unwrap_or_default();
            let name = name.replace("~1", "/").replace("~0", "~");
            if let Some(Value::Object(map)) = value.pointer_mut(parent) {
                map.remove(&name);
            }
        }
        Mutation::Insert(name, inserted) => {
            if let Value::Object(map) = &mut value {
                map.insert(name.clone(), inserted.clone());
            }
        }
        Mutation::Wrap => value = Value::Array(vec![value]),
        _ => {}
    }
    value
}

/// A request body around a JSON document of a real shape: the document mutated, cut off
/// (in the middle of a character too), replaced by bytes, empty or oversized.
fn body_around(shape: BoxedStrategy<Value>) -> BoxedStrategy<Vec<u8>> {
    let mutated = (shape.clone(), mutation())
        .prop_map(|(value, mutation)| mutate(value, &mutation).to_string().into_bytes());
    let cut = (shape, any::<Index>()).prop_map(|(value, at)| {
        let mut text = value.to_string().into_bytes();
        text.truncate(at.index(text.len().max(1)));
        text
    });
    prop_oneof![
        8 => mutated,
        2 => cut,
        1 => Just(Vec::new()),
        1 => "[ \t\r\n]{1,4}".prop_map(String::into_bytes),
        2 => json_value().prop_map(|value| value.to_string().into_bytes()),
        1 => vec(any::<u8>(), 0..64),
        1 => select(vec!["{\"a\":1e400}", "{\"a\":-0}", "{\"a\":\"\\ud800\"}", "{\"a\":1,\"a\":2}", "nul", "{\"a\":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}"])
            .prop_map(|raw| raw.as_bytes().to_vec()),
        1 => (17_000usize..20_000).prop_map(|len| format!("{{\"pad\":\"{}\"}}", "x".repeat(len)).into_bytes()),
    ]
    .boxed()
}

/// Bytes an HTTP header value may carry (visible ASCII, tab, obs-text): anything else is
/// replaced, as no client could send it.
fn header_value(raw: &[u8]) -> HeaderValue {
    let cleaned: Vec<u8> = raw
        .iter()
        .map(|&byte| match byte {
            b'\t' | 0x20..=0x7e | 0x80..=0xff => byte,
            _ => b'_',
        })
        .collect();
    HeaderValue::from_bytes(&cleaned).unwrap_or_else(|_| HeaderValue::from_static("_"))
}

/// Percent-encodes everything but letters and digits: a path segment or query value as
/// a client would send it.
fn encode(raw: &str) -> String {
    raw.bytes()
        .map(|byte| {
            if byte.is_ascii_alphanumeric() {
                (byte as char).to_string()
            } else {
                format!("%{byte:02X}")
            }
        })
        .collect()
}

/// An id in a URL path: plausible, or anything (encoded); never only dots, which a URL
/// parser would resolve into another path.
fn path_id() -> BoxedStrategy<String> {
    prop_oneof![
        "[A-Za-z0-9_-]{1,40}",
        "(?s).{1,30}".prop_map(|raw| encode(&raw)),
        "[A-Za-z0-9]{300,400}",
    ]
    .prop_filter("not a dot segment", |id| {
        !id.chars().all(|c| c == '.')
            && !id
                .to_ascii_lowercase()
                .replace("%2e", ".")
                .chars()
                .all(|c| c == '.')
    })
    .boxed()
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

// ---------------------------------------------------------------------------------------
// Compact JWS, built by hand so that every part can be wrong.

/// How the compact serialization itself is broken.
#[derive(Clone, Debug)]
enum Mangle {
    None,
    /// Signature bytes of its own.
    Signature(Vec<u8>),
    /// No signature.
    Unsigned,
    /// The signature of something else.
    OtherInput,
    /// A fourth part.
    ExtraPart,
    /// A character outside base64url in the payload.
    NotBase64(char),
    /// Cut off.
    Truncated(Index),
}

fn mangle() -> BoxedStrategy<Mangle> {
    prop_oneof![
        vec(any::<u8>(), 0..80).prop_map(Mangle::Signature),
        Just(Mangle::Unsigned),
        Just(Mangle::OtherInput),
        Just(Mangle::ExtraPart),
        select(vec!['=', '+', '/', '!', ' ', '.']).prop_map(Mangle::NotBase64),
        any::<Index>().prop_map(Mangle::Truncated),
    ]
    .boxed()
}

/// Signs `header` and `claims` (any JSON: the header's `alg` says what it says) with ES256
/// by `key`, then breaks the result as `mangle` says.
fn compact_jws(header: &Value, claims: &Value, key: &josekit::jwk::Jwk, mangle: &Mangle) -> String {
    use josekit::jws::{ES256, JwsSigner};
    let signer = ES256.signer_from_jwk(key).expect("a P-256 key");
    let header = URL_SAFE_NO_PAD.encode(header.to_string());
    let mut payload = URL_SAFE_NO_PAD.encode(claims.to_string());
    if let Mangle::NotBase64(c) = mangle {
        payload.insert(payload.len() / 2, *c);
    }
    let input = format!("{header}.{payload}");
    let signature = match mangle {
        Mangle::Signature(bytes) => bytes.clone(),
        Mangle::Unsigned => Vec::new(),
        Mangle::OtherInput => signer.sign(b"something else").expect("signs"),
        _ => signer.sign(input.as_bytes()).expect("signs"),
    };
    let mut token = format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature));
    match mangle {
        Mangle::ExtraPart => token.push_str(".e30"),
        Mangle::Truncated(at) => token.truncate(at.index(token.len())),
        _ => {}
    }
    token
}

fn jwk_of(key: &assent_device_sdk::DeviceKey) -> josekit::jwk::Jwk {
    josekit::jwk::Jwk::from_map(key.private_jwk()).expect("a JWK")
}

/// A value for a NumericDate claim that is wrong whatever the clock: not a number, or
/// out of range.
fn weird_time() -> BoxedStrategy<Value> {
    prop_oneof![
        Just(json!(-1)),
        Just(json!(1e30)),
        Just(json!(-1e30)),
        Just(json!(u64::MAX)),
        Just(json!(i64::MIN)),
        Just(json!("soon")),
        Just(json!(null)),
        Just(json!([1])),
        Just(json!({})),
        Just(json!(true)),
    ]
    .boxed()
}

// ---------------------------------------------------------------------------------------
// Authentication API: content types, query strings, bodies, flow ids, bindings.

/// Every action id, and some that are not.
fn action_name() -> BoxedStrategy<String> {
    prop_oneof![
        6 => select(ActionId::ALL.map(ActionId::as_str).to_vec()).prop_map(str::to_owned),
        1 => select(ActionId::ALL.map(ActionId::as_str).to_vec()).prop_map(|id| id.to_uppercase()),
        2 => "[a-zA-Z]{0,20}",
        1 => "(?s).{0,12}",
    ]
    .boxed()
}

fn content_type() -> BoxedStrategy<Option<Vec<u8>>> {
    let suffix = prop_oneof![
        4 => Just(String::new()),
        1 => "; ?charset=[a-zA-Z0-9-]{0,10}",
        1 => "[ ;=a-z\"]{0,10}",
    ];
    prop_oneof![
        6 => (action_name(), suffix.clone())
            .prop_map(|(id, suffix)| Some(format!("application/vnd.pingidentity.{id}+json{suffix}").into_bytes())),
        1 => (action_name(), suffix.clone())
            .prop_map(|(id, suffix)| Some(format!("APPLICATION/Vnd.PingIdentity.{id}+JSON{suffix}").into_bytes())),
        1 => (action_name(), "[a-z+]{0,8}")
            .prop_map(|(id, tail)| Some(format!("application/vnd.pingidentity.{id}{tail}").into_bytes())),
        2 => suffix.prop_map(|suffix| Some(format!("application/json{suffix}").into_bytes())),
        1 => "[ -~]{0,60}".prop_map(|raw| Some(raw.into_bytes())),
        1 => vec(any::<u8>(), 0..40).prop_map(Some),
        1 => Just(None),
    ]
    .boxed()
}

fn wait_value() -> BoxedStrategy<String> {
    prop_oneof![
        6 => Just("0".to_owned()),
        2 => "[a-z]{1,5}",
        2 => "-[0-9]{1,3}",
        2 => "[0-9]{21,25}",
        1 => Just(u64::MAX.to_string()),
        1 => Just("1".to_owned()),
        1 => Just("1.5".to_owned()),
    ]
    .boxed()
}

fn query() -> BoxedStrategy<Option<String>> {
    prop_oneof![
        6 => Just(None),
        2 => action_name().prop_map(|id| Some(format!("action={}", encode(&id)))),
        2 => wait_value().prop_map(|wait| Some(format!("wait={wait}"))),
        1 => (action_name(), wait_value())
            .prop_map(|(id, wait)| Some(format!("action={}&wait={wait}", encode(&id)))),
        1 => "[a-zA-Z0-9%&=+._~-]{0,30}".prop_map(Some),
    ]
    .boxed()
}

/// The parameter bodies of the real actions, with text of any kind in their fields.
fn action_shape() -> BoxedStrategy<Value> {
    let request = prop_oneof![
        text().prop_map(|id| ActionRequest::SelectDevice(DeviceChoice::new(id))),
        text().prop_map(|id| ActionRequest::SetDefaultDevice(DeviceChoice::new(id))),
        text().prop_map(|id| ActionRequest::RemoveDevice(DeviceChoice::new(id))),
        (text(), text()).prop_map(|(id, nickname)| {
            ActionRequest::UpdateDeviceNickname(NicknameUpdate { id, nickname })
        }),
        proptest::option::of(text()).prop_map(|mobile_payload| {
            ActionRequest::Authenticate(MobilePayload { mobile_payload })
        }),
        text().prop_map(|otp| ActionRequest::CheckOtp(Passcode { otp })),
        text().prop_map(|otp| ActionRequest::ActivateTotpDevice(Passcode { otp })),
        (text(), proptest::option::of(text())).prop_map(|(device_type, application_name)| {
            ActionRequest::SelectDevicePairingMethod(PairingMethodChoice {
                device_pairing_method: PairingMethodRef {
                    device_type,
                    application_name,
                },
            })
        }),
        text().prop_map(|phone| ActionRequest::SubmitSmsTarget(PhoneTarget { phone })),
        text().prop_map(|email| ActionRequest::SubmitEmailTarget(EmailTarget { email })),
        Just(ActionRequest::CancelAuthentication),
        Just(ActionRequest::Poll),
    ];
    request
        .prop_map(|request| serde_json::to_value(&request).expect("an action serialises"))
        .boxed()
}

/// Which flow a request names.
#[derive(Clone, Debug)]
enum FlowRef {
    Real,
    Other(String),
}

/// How a request presents the flow's binding.
#[derive(Clone, Debug)]
enum Binding {
    Header,
    Cookie,
    Absent,
    Wrong(Vec<u8>),
}

#[derive(Clone, Debug)]
struct AuthnCase {
    flow: FlowRef,
    xsrf: bool,
    binding: Binding,
    content_type: Option<Vec<u8>>,
    query: Option<String>,
    body: Vec<u8>,
}

fn authn_case() -> impl Strategy<Value = AuthnCase> {
    let flow = prop_oneof![
        9 => Just(FlowRef::Real),
        1 => path_id().prop_map(FlowRef::Other),
    ];
    let binding = prop_oneof![
        8 => Just(Binding::Header),
        1 => Just(Binding::Cookie),
        1 => Just(Binding::Absent),
        1 => vec(any::<u8>(), 0..40).prop_map(Binding::Wrong),
    ];
    (
        flow,
        proptest::bool::weighted(0.95),
        binding,
        content_type(),
        query(),
        body_around(action_shape()),
    )
        .prop_map(
            |(flow, xsrf, binding, content_type, query, body)| AuthnCase {
                flow,
                xsrf,
                binding,
                content_type,
                query,
                body,
            },
        )
}

/// A flow waiting for alice's push, read once (bound to this client): its id and binding.
async fn waiting_flow(app: &TestApp) -> (String, String) {
    let flow = app.start_flow(&oob_request("alice")).await;
    let binding = app.binding(&flow).expect("the flow is bound to the test");
    (flow, binding)
}

#[test]
fn authentication_api_content_types_and_bodies() {
    let target = Target::start(Figment::new());
    let _phone = target.block_on(target.app.pair_device("alice"));
    let flow = Mutex::new(target.block_on(waiting_flow(&target.app)));
    target.settle();
    run("authentication API", authn_case(), |case| {
        target.block_on(async {
            let (flow_id, binding) = flow.lock().unwrap().clone();
            let id = match &case.flow {
                FlowRef::Real => flow_id.clone(),
                FlowRef::Other(other) => other.clone(),
            };
            let mut url = target.app.url(&format!("/pf-ws/authn/flows/{id}"));
            if let Some(query) = &case.query {
                url = format!("{url}?{query}");
            }
            let mut request = target.app.http.post(url).body(case.body.clone());
            if case.xsrf {
                request = request.header("X-XSRF-Header", "PingFederate");
            }
            if let Some(content_type) = &case.content_type {
                request = request.header("Content-Type", header_value(content_type));
            }
            request = match &case.binding {
                Binding::Header => request.header("X-PF-Authn-API-State", binding.clone()),
                Binding::Cookie => {
                    request.header("Cookie", format!("assent_authn_state={binding}"))
                }
                Binding::Absent => request,
                Binding::Wrong(raw) => request.header("X-PF-Authn-API-State", header_value(raw)),
            };
            let answer = target.send(request).await?;
            target.alive().await?;
            if answer.status == 200 {
                // Valid by chance: a poll (which writes nothing), or a cancel of the
                // flow, which the case must have asked for by name.
                let state: AuthnState = serde_json::from_slice(&answer.body)
                    .map_err(|error| fail(format!("200 but not a state: {error}")))?;
                match state.status.name() {
                    StatusName::PushConfirmationWaiting => return target.unchanged(&[], &answer),
                    StatusName::Canceled => {
                        let named = |raw: &[u8]| {
                            String::from_utf8_lossy(raw).contains("cancelAuthentication")
                        };
                        if !named(case.content_type.as_deref().unwrap_or_default())
                            && !case.query.as_deref().is_some_and(|q| named(q.as_bytes()))
                        {
                            return Err(fail("a flow was canceled by a case that did not ask"));
                        }
                        *flow.lock().unwrap() = waiting_flow(&target.app).await;
                        target.settle();
                        return Ok(());
                    }
                    other => return Err(fail(format!("a hostile case reached {other:?}"))),
                }
            }
            answer.ping_error()?;
            target.unchanged(&[], &answer)
        })
    });
    target.report("authentication API");
}

// ---------------------------------------------------------------------------------------
// The configuration: `assent config check` and `assent serve` load it with
// `assent::config::load`; here its text goes through the same checks.

/// The lines of the default configuration that set one key on one line, with the key's
/// dotted path (`[[array]]` tables named by their array).
fn settable_lines() -> Vec<(usize, String)> {
    let mut section = String::new();
    let mut lines = Vec::new();
    for (index, line) in assent::config::DEFAULT_CONFIG.lines().enumerate() {
        let line = line.trim();
        if let Some(name) = line
            .strip_prefix("[[")
            .and_then(|rest| rest.strip_suffix("]]"))
        {
            section = name.to_owned();
        } else if let Some(name) = line
            .strip_prefix('[')
            .and_then(|rest| rest.strip_suffix(']'))
        {
            section = name.to_owned();
        } else if let Some((key, value)) = line.split_once('=')
            && !line.starts_with('#')
            && value.matches('[').count() == value.matches(']').count()
            && value.matches('{').count() == value.matches('}').count()
        {
            let key = key.trim();
            let path = if section.is_empty() {
                key.to_owned()
            } else {
                format!("{section}.{key}")
            };
            lines.push((index, path));
        }
    }
    lines
}

/// A TOML value of any type (each well-formed: the file still parses).
fn toml_value() -> BoxedStrategy<String> {
    prop_oneof![
        "[a-zA-Z0-9:/._-]{0,20}".prop_map(|text| format!("\"{text}\"")),
        any::<i64>().prop_map(|n| n.to_string()),
        any::<f64>().prop_filter_map("finite", |f| f.is_finite().then(|| format!("{f:e}"))),
        any::<bool>().prop_map(|b| b.to_string()),
        Just("[]".to_owned()),
        Just("[1, 2]".to_owned()),
        Just("[\"a\", \"\"]".to_owned()),
        Just("{}".to_owned()),
        Just("{ a = 1 }".to_owned()),
        Just("1979-05-27T07:32:00Z".to_owned()),
        Just("\"\"".to_owned()),
        Just("-0".to_owned()),
        Just("inf".to_owned()),
        Just("nan".to_owned()),
        Just("0x7fffffffffffffff".to_owned()),
    ]
    .boxed()
}

#[derive(Clone, Debug)]
enum ConfigCase {
    /// Any text.
    Text(String),
    /// The default file with the value on one line replaced.
    Replaced { line: Index, value: String },
    /// The default file with one unknown key added to a table.
    Unknown {
        line: Index,
        key: String,
        value: String,
    },
}

fn config_case() -> impl Strategy<Value = ConfigCase> {
    let toml_line =
        ("[a-z_.]{1,30}", toml_value()).prop_map(|(key, value)| format!("{key} = {value}"));
    let toml_text = vec(
        prop_oneof![
            3 => toml_line,
            1 => "\\[[a-z_.]{1,20}\\]",
            1 => "\\[\\[[a-z_]{1,20}\\]\\]",
            1 => "(?s).{0,30}",
        ],
        0..12,
    )
    .prop_map(|lines| lines.join("\n"));
    prop_oneof![
        2 => "(?s).{0,200}".prop_map(ConfigCase::Text),
        2 => toml_text.prop_map(ConfigCase::Text),
        5 => (any::<Index>(), toml_value()).prop_map(|(line, value)| ConfigCase::Replaced { line, value }),
        1 => (any::<Index>(), "[a-z][a-z_]{0,15}", toml_value())
            .prop_map(|(line, key, value)| ConfigCase::Unknown { line, key: format!("x_{key}"), value }),
    ]
}

#[test]
fn the_configuration_loader_names_the_key_at_fault() {
    let lines = settable_lines();
    assert!(
        lines.len() > 40,
        "the default configuration is read: {lines:?}"
    );
    let default: Vec<&str> = assent::config::DEFAULT_CONFIG.lines().collect();
    run("configuration", config_case(), |case| {
        let (text, key) = match &case {
            ConfigCase::Text(text) => (text.clone(), None),
            ConfigCase::Replaced { line, value } => {
                let (index, key) = &lines[line.index(lines.len())];
                let mut text = default.clone();
                let name = key.rsplit('.').next().unwrap_or(key);
                let replaced = format!("{name} = {value}");
                text[*index] = &replaced;
                (text.join("\n"), Some(key.clone()))
            }
            ConfigCase::Unknown { line, key, value } => {
                let (index, path) = &lines[line.index(lines.len())];
                let mut text = default.clone();
                let added = format!("{key} = {value}\n{}", default[*index]);
                text[*index] = &added;
                let path = match path.rsplit_once('.') {
                    Some((section, _)) => format!("{section}.{key}"),
                    None => key.clone(),
                };
                (text.join("\n"), Some(path))
            }
        };
        match assent::config::load_text(&text) {
            Ok(_) if matches!(case, ConfigCase::Unknown { .. }) => {
                Err(fail(format!("an unknown key was accepted: {key:?}")))
            }
            Ok(_) => Ok(()),
            Err(error) => {
                let message = error.to_string();
                if message.trim().is_empty() {
                    return Err(fail("an empty error"));
                }
                match key {
                    Some(key) => {
                        let name = key.rsplit('.').next().unwrap_or(&key);
                        if message.contains(name) {
                            Ok(())
                        } else {
                            Err(fail(format!("the error does not name `{key}`: {message}")))
                        }
                    }
                    None => Ok(()),
                }
            }
        }
    });
}

// ---------------------------------------------------------------------------------------
// Mobile payloads: `authenticate {mobilePayload}` on a flow nobody has entered yet.

/// What makes a generated mobile payload invalid (each case has one, so that none can be
/// valid by chance).
#[derive(Clone, Debug)]
enum PayloadDefect {
    /// Signed by another key than the one it claims.
    Signer,
    /// The JWS itself is broken.
    Mangled(Mangle),
    /// The header's `alg` is not ES256.
    Alg(String),
    /// The header's `typ` is not the payload's.
    Typ(Option<String>),
    /// A claim has another value (or type).
    Claim(&'static str, Value),
    /// A claim is missing.
    Missing(&'static str),
    /// Signed too long ago.
    Stale(u64),
    /// Signed in the future.
    Future(u64),
}

fn payload_defect() -> BoxedStrategy<PayloadDefect> {
    prop_oneof![
        2 => Just(PayloadDefect::Signer),
        3 => mangle().prop_map(PayloadDefect::Mangled),
        1 => select(vec!["none", "HS256", "RS256", "es256", "", "ES384"]).prop_map(|alg| PayloadDefect::Alg(alg.to_owned())),
        1 => proptest::option::of(select(vec!["JWT", "assent-trusted-device+jwt", "assent-new-device+jwt", "", "x"]).prop_map(str::to_owned)).prop_map(PayloadDefect::Typ),
        3 => (select(vec!["iss", "flowId", "jti", "iat", "publicJwk"]), json_value())
            .prop_map(|(claim, value)| PayloadDefect::Claim(claim, value)),
        1 => select(vec!["", "x"]).prop_map(|_| PayloadDefect::Claim("jti", json!(""))),
        1 => (129usize..300).prop_map(|len| PayloadDefect::Claim("jti", json!("j".repeat(len)))),
        1 => weird_time().prop_map(|value| PayloadDefect::Claim("iat", value)),
        2 => select(vec!["iss", "flowId", "jti", "iat", "publicJwk"]).prop_map(PayloadDefect::Missing),
        1 => (200u64..10_000_000).prop_map(PayloadDefect::Stale),
        1 => (60u64..10_000_000).prop_map(PayloadDefect::Future),
    ]
    .boxed()
}

#[derive(Clone, Debug)]
enum PayloadCase {
    /// A trusted device's payload for this flow, with a defect.
    Trusted {
        defect: PayloadDefect,
        jti: String,
        extra: Option<(String, Value)>,
    },
    /// A new app's self-signed payload, with a defect.
    NewApp { defect: PayloadDefect, jti: String },
    /// Anything else in the field.
    Raw(Value),
}

fn payload_case() -> impl Strategy<Value = PayloadCase> {
    let extra = proptest::option::of(("[a-z]{1,8}", json_value()));
    prop_oneof![
        5 => (payload_defect(), "[a-zA-Z0-9]{1,40}", extra)
            .prop_map(|(defect, jti, extra)| PayloadCase::Trusted { defect, jti, extra }),
        3 => (payload_defect(), "[a-zA-Z0-9]{1,40}")
            .prop_map(|(defect, jti)| PayloadCase::NewApp { defect, jti }),
        2 => prop_oneof![
            text().prop_map(Value::String),
            "[A-Za-z0-9_-]{0,30}\\.[A-Za-z0-9_-]{0,30}\\.[A-Za-z0-9_-]{0,30}".prop_map(Value::String),
            // `null` is a browser's `authenticate {}`, which is valid: left out.
            json_value().prop_filter("not null", |value| !value.is_null()),
        ]
        .prop_map(PayloadCase::Raw),
    ]
}

/// The payload with its one defect: signed by `right` unless the defect says otherwise.
fn defective_jws(
    typ: &str,
    mut claims: Value,
    defect: &PayloadDefect,
    right: &josekit::jwk::Jwk,
    stranger: &josekit::jwk::Jwk,
) -> String {
    let mut header = json!({ "alg": "ES256", "typ": typ });
    let mut key = right;
    let mut broken = Mangle::None;
    match defect {
        PayloadDefect::Signer => key = stranger,
        PayloadDefect::Mangled(mangle) => broken = mangle.clone(),
        PayloadDefect::Alg(alg) => header["alg"] = json!(alg),
        PayloadDefect::Typ(Some(other)) if other != typ => header["typ"] = json!(other),
        PayloadDefect::Typ(_) => {
            header.as_object_mut().unwrap().remove("typ");
        }
        PayloadDefect::Claim(name, value) => {
            // A claim this payload does not have would be an extra, not a defect: spoil
            // its flow id instead. The same value again would not be a defect either.
            let name = if claims.get(*name).is_some() {
                *name
            } else {
                "flowId"
            };
            let same = claims.get(name) == Some(value);
            claims[name] = match value {
                _ if same => json!(["not", value]),
                // Another jti of 1 to 128 characters is as good as the first.
                Value::String(jti) if name == "jti" && (1..=128).contains(&jti.len()) => {
                    json!("")
                }
                _ => value.clone(),
            };
        }
        PayloadDefect::Missing(name) => {
            let name = if claims.get(*name).is_some() {
                *name
            } else {
                "flowId"
            };
            claims.as_object_mut().unwrap().remove(name);
        }
        PayloadDefect::Stale(secs) => claims["iat"] = json!(now_secs().saturating_sub(*secs)),
        PayloadDefect::Future(secs) => claims["iat"] = json!(now_secs() + secs),
    }
    compact_jws(&header, &claims, key, &broken)
}

#[test]
fn mobile_payloads() {
    let target = Target::start(Figment::new());
    let phone = target.block_on(target.app.pair_device("alice"));
    let device_key = jwk_of(phone.device.signer().key());
    let stranger = assent_device_sdk::DeviceKey::generate().unwrap();
    let stranger_key = jwk_of(&stranger);
    let flow = target.block_on(target.app.start_flow_unauthenticated(&oob_request("alice")));
    target.settle();
    run("mobile payloads", payload_case(), |case| {
        target.block_on(async {
            let payload = match &case {
                PayloadCase::Trusted { defect, jti, extra } => {
                    let mut claims = json!({
                        "iss": phone.id(), "flowId": flow, "iat": now_secs(), "jti": jti,
                    });
                    if let Some((name, value)) = extra
                        && claims.get(name).is_none()
                    {
                        claims[name.as_str()] = value.clone();
                    }
                    let typ = assent_proto::mobile::TRUSTED_DEVICE_PAYLOAD_TYPE;
                    Value::String(defective_jws(
                        typ,
                        claims,
                        defect,
                        &device_key,
                        &stranger_key,
                    ))
                }
                PayloadCase::NewApp { defect, jti } => {
                    let claims = json!({
                        "publicJwk": stranger.public_jwk(), "flowId": flow,
                        "iat": now_secs(), "jti": jti, "name": "Phone", "os": "iOS",
                        "osVersion": "18.1", "model": "iPhone 16",
                    });
                    let typ = assent_proto::mobile::NEW_DEVICE_PAYLOAD_TYPE;
                    // The right key of a new app is the one it carries.
                    Value::String(defective_jws(
                        typ,
                        claims,
                        defect,
                        &stranger_key,
                        &device_key,
                    ))
                }
                PayloadCase::Raw(value) => value.clone(),
            };
            let request = target
                .app
                .http
                .post(target.app.url(&format!("/pf-ws/authn/flows/{flow}")))
                .header("X-XSRF-Header", "PingFederate")
                .header(
                    "Content-Type",
                    "application/vnd.pingidentity.authenticate+json",
                )
                .body(json!({ "mobilePayload": payload }).to_string());
            let answer = target.send(request).await?;
            target.alive().await?;
            answer.ping_error()?;
            target.unchanged(&[], &answer)
        })
    });
    target.report("mobile payloads");
}

// ---------------------------------------------------------------------------------------
// The Device API: device JWTs on every authenticated route, decision proofs.

#[derive(Clone, Debug)]
enum DeviceCase {
    /// A request with a device token that has a defect.
    Token {
        route: usize,
        scheme: String,
        defect: PayloadDefect,
        jti: String,
    },
    /// Any `Authorization` header at all.
    Header {
        route: usize,
        value: Option<Vec<u8>>,
    },
    /// A decision, authenticated rightly, with a proof or a body that has a defect.
    Decision {
        auth_id: Option<String>,
        decision: String,
        defect: ProofDefect,
        body: Mutation,
    },
}

/// What makes a decision invalid.
#[derive(Clone, Debug)]
enum ProofDefect {
    Signer,
    Mangled(Mangle),
    /// The proof says another decision than the body.
    OtherDecision,
    AuthId(String),
    ParamsHash(String),
    Claim(&'static str, Value),
    /// Not a proof: any text.
    Text(String),
}

fn proof_defect() -> BoxedStrategy<ProofDefect> {
    prop_oneof![
        Just(ProofDefect::Signer),
        mangle().prop_map(ProofDefect::Mangled),
        Just(ProofDefect::OtherDecision),
        text().prop_map(ProofDefect::AuthId),
        text().prop_map(ProofDefect::ParamsHash),
        (
            select(vec!["authId", "decision", "paramsHash"]),
            json_value()
        )
            .prop_map(|(claim, value)| ProofDefect::Claim(claim, value)),
        text().prop_map(ProofDefect::Text),
    ]
    .boxed()
}

/// The routes that take a device token: method and path.
const DEVICE_ROUTES: [(&str, &str); 5] = [
    ("GET", "/device/v1/pending?wait=0"),
    ("GET", "/device/v1/devices"),
    ("POST", "/device/v1/qr/AAAAAAAAAAAAAAAAAAAAAAAA"),
    ("POST", "/device/v1/users"),
    ("DELETE", "/device/v1/devices/AAAAAAAAAAAAAAAAAAAA"),
];

fn device_case() -> impl Strategy<Value = DeviceCase> {
    let route = 0..DEVICE_ROUTES.len();
    let scheme = prop_oneof![
        8 => Just("Device ".to_owned()),
        1 => select(vec!["device ", "Bearer ", "Device  ", "Device", "Basic ", ""]).prop_map(str::to_owned),
    ];
    prop_oneof![
        5 => (route.clone(), scheme, payload_defect(), "[a-zA-Z0-9]{1,40}")
            .prop_map(|(route, scheme, defect, jti)| DeviceCase::Token { route, scheme, defect, jti }),
        1 => (route, proptest::option::of(vec(any::<u8>(), 0..80)))
            .prop_map(|(route, value)| DeviceCase::Header { route, value }),
        5 => (
            proptest::option::of(path_id()),
            prop_oneof![4 => Just("approve".to_owned()), 2 => Just("deny".to_owned()), 1 => text()],
            proof_defect(),
            prop_oneof![4 => Just(Mutation::Keep), 1 => mutation()],
        )
            .prop_map(|(auth_id, decision, defect, body)| DeviceCase::Decision { auth_id, decision, defect, body }),
    ]
}

#[test]
fn device_tokens_and_decision_proofs() {
    let target = Target::start(Figment::new());
    let phone = target.block_on(target.app.pair_device("alice"));
    let device_key = jwk_of(phone.device.signer().key());
    let stranger_key = jwk_of(&assent_device_sdk::DeviceKey::generate().unwrap());
    let _flow = target.block_on(
        target
            .app
            .start_flow(&transfer_request("alice", "10", "Bob")),
    );
    let request = target.block_on(phone.one_pending());
    let params_hash = assent_core::params::digest(&request.dynamic_params);
    let auth_id = request.auth_id.to_string();
    target.settle();
    // The replay markers of this device's own valid tokens, which decisions carry.
    let own_markers = format!("jti:{{d:{}}}", phone.id());
    run("device API", device_case(), |case| {
        target.block_on(async {
            let (answer, spared) = match &case {
                DeviceCase::Token {
                    route,
                    scheme,
                    defect,
                    jti,
                } => {
                    let claims = json!({
                        "iss": phone.id(), "exp": now_secs() + 60, "jti": jti,
                    });
                    let token = match defect {
                        // A device token has no `iat` or `flowId` to spoil: spoil its exp.
                        PayloadDefect::Claim("flowId" | "publicJwk", _)
                        | PayloadDefect::Missing("flowId" | "publicJwk")
                        | PayloadDefect::Stale(_)
                        | PayloadDefect::Typ(_) => defective_jws(
                            "JWT",
                            claims,
                            &PayloadDefect::Claim("exp", json!(now_secs() - 600)),
                            &device_key,
                            &stranger_key,
                        ),
                        PayloadDefect::Future(secs) => defective_jws(
                            "JWT",
                            claims,
                            &PayloadDefect::Claim("exp", json!(now_secs() + 400 + secs)),
                            &device_key,
                            &stranger_key,
                        ),
                        PayloadDefect::Claim("iat", value) => defective_jws(
                            "JWT",
                            claims,
                            &PayloadDefect::Claim("exp", value.clone()),
                            &device_key,
                            &stranger_key,
                        ),
                        PayloadDefect::Missing("iat") => defective_jws(
                            "JWT",
                            claims,
                            &PayloadDefect::Missing("exp"),
                            &device_key,
                            &stranger_key,
                        ),
                        other => defective_jws("JWT", claims, other, &device_key, &stranger_key),
                    };
                    let (method, path) = DEVICE_ROUTES[*route];
                    let request = target
                        .app
                        .http
                        .request(method.parse().unwrap(), target.app.url(path))
                        .header(
                            "Authorization",
                            header_value(format!("{scheme}{token}").as_bytes()),
                        )
                        .json(&json!({ "pairingKey": "AAAAAAAAAAAAAAAAAAAA" }));
                    (target.send(request).await?, Vec::new())
                }
                DeviceCase::Header { route, value } => {
                    let (method, path) = DEVICE_ROUTES[*route];
                    let mut request = target
                        .app
                        .http
                        .request(method.parse().unwrap(), target.app.url(path));
                    if let Some(value) = value {
                        request = request.header("Authorization", header_value(value));
                    }
                    (target.send(request).await?, Vec::new())
                }
                DeviceCase::Decision {
                    auth_id: path_auth,
                    decision,
                    defect,
                    body,
                } => {
                    let body_decision = decision.as_str();
                    let proof_decision = match (defect, body_decision) {
                        (ProofDefect::OtherDecision, "approve") => "deny",
                        (ProofDefect::OtherDecision, _) => "approve",
                        (_, "deny") => "deny",
                        _ => "approve",
                    };
                    let mut claims = json!({
                        "authId": auth_id, "decision": proof_decision, "paramsHash": params_hash,
                    });
                    let header = json!({ "alg": "ES256" });
                    let proof = match defect {
                        ProofDefect::Signer => {
                            compact_jws(&header, &claims, &stranger_key, &Mangle::None)
                        }
                        ProofDefect::Mangled(mangle) => {
                            compact_jws(&header, &claims, &device_key, mangle)
                        }
                        ProofDefect::AuthId(other) | ProofDefect::ParamsHash(other) => {
                            let name = if matches!(defect, ProofDefect::AuthId(_)) {
                                "authId"
                            } else {
                                "paramsHash"
                            };
                            claims[name] = if claims[name] == *other {
                                json!(null)
                            } else {
                                json!(other)
                            };
                            compact_jws(&header, &claims, &device_key, &Mangle::None)
                        }
                        ProofDefect::Claim(name, value) => {
                            claims[*name] = if claims[*name] == *value {
                                json!([])
                            } else {
                                value.clone()
                            };
                            compact_jws(&header, &claims, &device_key, &Mangle::None)
                        }
                        ProofDefect::OtherDecision => {
                            compact_jws(&header, &claims, &device_key, &Mangle::None)
                        }
                        ProofDefect::Text(text) => text.clone(),
                    };
                    let body = mutate(json!({ "decision": body_decision, "proof": proof }), body);
                    let path_auth = path_auth.clone().unwrap_or_else(|| auth_id.clone());
                    let request = target
                        .app
                        .http
                        .post(
                            target
                                .app
                                .url(&format!("/device/v1/authentications/{path_auth}")),
                        )
                        .header("Authorization", phone.authorization())
                        .json(&body);
                    (target.send(request).await?, vec![own_markers.as_str()])
                }
            };
            target.alive().await?;
            answer.problem()?;
            target.unchanged(&spared, &answer)
        })
    });
    target.report("device API");
}

// ---------------------------------------------------------------------------------------
// CIBA: the backchannel, token and introspection endpoints' forms, client authentication
// (Basic, post, private_key_jwt assertions) and signed request objects.

const CIBA_SECRET: &str = "hostile-ciba-secret-0123456789";
const CIBA_ENDPOINTS: [&str; 3] = [
    "/as/bc-auth.ciba",
    "/as/token.oauth2",
    "/as/introspect.oauth2",
];
const CIBA_CLIENTS: [&str; 4] = ["rp-poll", "rp-post", "rp-jwt", "rp-signed"];

#[derive(Clone, Debug)]
enum ClientAuth {
    None,
    Basic(String, String),
    BasicRaw(Vec<u8>),
    Post(String, String),
    /// A client assertion by rp-jwt, valid unless it has a defect.
    Assertion(Option<PayloadDefect>),
}

#[derive(Clone, Debug)]
struct CibaCase {
    endpoint: usize,
    content_type: Option<Vec<u8>>,
    auth: ClientAuth,
    params: Vec<(String, String)>,
    /// A request object by rp-signed, valid unless it has a defect.
    request_object: Option<Option<PayloadDefect>>,
    /// A body of its own instead of the form.
    raw: Option<Vec<u8>>,
}

/// No generated value may name the one user, so that no request can be valid.
fn no_user(value: &str) -> bool {
    !value.to_lowercase().contains("alice")
}

fn ciba_value() -> BoxedStrategy<String> {
    prop_oneof![
        2 => select(vec![
            "openid", "openid profile", "openid email offline_access", "profile", "openid admin",
            "urn:openid:params:grant-type:ciba", "refresh_token", "authorization_code",
            "120", "-5", "0", "99999999999999999999", "1e3", "bob", "bob@example.com", "+15555550100",
            "x.y.z", "eyJhbGciOiJub25lIn0.e30.", "poll",
        ]).prop_map(str::to_owned),
        3 => text(),
    ]
    .prop_filter("names no user", |value| no_user(value))
    .boxed()
}

fn ciba_case() -> impl Strategy<Value = CibaCase> {
    let name = prop_oneof![
        6 => select(vec![
            "scope", "login_hint", "id_token_hint", "login_hint_token", "binding_message",
            "user_code", "requested_expiry", "client_notification_token", "acr_values",
            "grant_type", "auth_req_id", "refresh_token", "token", "client_id", "request",
            "client_assertion_type", "client_secret",
        ]).prop_map(str::to_owned),
        1 => "[a-z_]{0,12}",
    ];
    let auth = prop_oneof![
        1 => Just(ClientAuth::None),
        4 => (select(CIBA_CLIENTS.to_vec()), prop_oneof![Just(CIBA_SECRET.to_owned()), text()])
            .prop_map(|(id, secret)| ClientAuth::Basic(id.to_owned(), secret)),
        1 => vec(any::<u8>(), 0..40).prop_map(ClientAuth::BasicRaw),
        1 => (select(CIBA_CLIENTS.to_vec()), prop_oneof![Just(CIBA_SECRET.to_owned()), text()])
            .prop_map(|(id, secret)| ClientAuth::Post(id.to_owned(), secret)),
        2 => proptest::option::of(payload_defect()).prop_map(ClientAuth::Assertion),
    ];
    let form_type = prop_oneof![
        8 => Just(Some(b"application/x-www-form-urlencoded".to_vec())),
        1 => Just(Some(b"Application/X-WWW-Form-Urlencoded; charset=utf-8".to_vec())),
        1 => content_type(),
    ];
    (
        0..CIBA_ENDPOINTS.len(),
        form_type,
        auth,
        vec((name, ciba_value()), 0..7),
        prop_oneof![3 => Just(None), 1 => proptest::option::of(payload_defect()).prop_map(Some)],
        prop_oneof![9 => Just(None), 1 => vec(any::<u8>(), 0..120).prop_map(Some)],
    )
        .prop_map(
            |(endpoint, content_type, auth, params, request_object, raw)| CibaCase {
                endpoint,
                content_type,
                auth,
                params,
                request_object,
                raw,
            },
        )
}

/// A client JWT (assertion or request object) from `claims`, with `defect` translated to
/// the claims a client JWT has (`exp`, `aud`, `sub`...).
fn client_jwt(
    claims: Value,
    defect: Option<&PayloadDefect>,
    right: &josekit::jwk::Jwk,
    stranger: &josekit::jwk::Jwk,
) -> String {
    let header = json!({ "alg": "ES256", "typ": "JWT" });
    let Some(defect) = defect else {
        return compact_jws(&header, &claims, right, &Mangle::None);
    };
    let claim = |name: &str| {
        match name {
            "flowId" => "aud",
            "iat" => "exp",
            "publicJwk" => "iss",
            other => other,
        }
        .to_owned()
    };
    let translated = match defect {
        // A client JWT's jti may be up to 256 characters long: an empty one is wrong.
        PayloadDefect::Claim("jti", Value::String(jti)) if jti.len() <= 256 => {
            PayloadDefect::Claim("jti", json!(""))
        }
        PayloadDefect::Claim(name, value) => PayloadDefect::Claim(leak(claim(name)), value.clone()),
        PayloadDefect::Missing(name) => PayloadDefect::Missing(leak(claim(name))),
        PayloadDefect::Stale(secs) => {
            PayloadDefect::Claim("exp", json!(now_secs().saturating_sub(*secs)))
        }
        PayloadDefect::Future(secs) => {
            PayloadDefect::Claim("exp", json!(now_secs() + 3_700 + secs))
        }
        // A client JWT's typ is not checked: sign it with another key instead.
        PayloadDefect::Typ(_) => PayloadDefect::Signer,
        other => other.clone(),
    };
    defective_jws("JWT", claims, &translated, right, stranger)
}

/// The claim names above are few and fixed.
fn leak(name: String) -> &'static str {
    match name.as_str() {
        "aud" => "aud",
        "exp" => "exp",
        "iss" => "iss",
        "jti" => "jti",
        _ => "sub",
    }
}

fn ciba_clients(key: &josekit::jwk::Jwk) -> Value {
    let secret = assent_core::config::SecretHash::of(CIBA_SECRET).to_hex();
    let jwks = json!({ "keys": [Value::Object(key.to_public_key().unwrap().as_ref().clone())] });
    let scopes = json!(["openid", "profile", "email", "offline_access"]);
    json!([
        { "id": "rp-poll", "name": "Poll", "auth_method": "client_secret_basic",
          "secret_sha256": secret, "delivery_mode": "poll", "scopes": scopes },
        { "id": "rp-post", "name": "Post", "auth_method": "client_secret_post",
          "secret_sha256": secret, "delivery_mode": "poll", "scopes": scopes },
        { "id": "rp-jwt", "name": "JWT", "auth_method": "private_key_jwt",
          "jwks": jwks, "delivery_mode": "poll", "scopes": scopes },
        { "id": "rp-signed", "name": "Signed", "auth_method": "client_secret_basic",
          "secret_sha256": secret, "jwks": jwks, "require_signed_request": true,
          "delivery_mode": "poll", "scopes": scopes },
    ])
}

#[test]
fn ciba_forms_client_assertions_and_request_objects() {
    let client_key = jwk_of(&assent_device_sdk::DeviceKey::generate().unwrap());
    let stranger_key = jwk_of(&assent_device_sdk::DeviceKey::generate().unwrap());
    let target = Target::start(Figment::new().merge(("ciba_clients", ciba_clients(&client_key))));
    let _phone = target.block_on(target.app.pair_device("alice"));
    target.settle();
    let issuer = target.app.address.clone();
    run("CIBA", ciba_case(), |case| {
        target.block_on(async {
            let mut form = case.params.clone();
            let mut valid_jwt = false;
            let now = now_secs();
            if let Some(defect) = &case.request_object {
                let claims = json!({
                    "iss": "rp-signed", "aud": issuer, "exp": now + 60, "iat": now, "nbf": now,
                    "jti": unique("request"), "scope": "openid", "login_hint": "bob",
                });
                valid_jwt |= defect.is_none();
                form.push((
                    "request".to_owned(),
                    client_jwt(claims, defect.as_ref(), &client_key, &stranger_key),
                ));
            }
            let url = target.app.url(CIBA_ENDPOINTS[case.endpoint]);
            let mut request = target.app.http.post(url);
            match &case.auth {
                ClientAuth::None => {}
                ClientAuth::Basic(id, secret) => request = request.basic_auth(id, Some(secret)),
                ClientAuth::BasicRaw(raw) => {
                    let mut value = b"Basic ".to_vec();
                    value.extend_from_slice(raw);
                    request = request.header("Authorization", header_value(&value));
                }
                ClientAuth::Post(id, secret) => {
                    form.push(("client_id".to_owned(), id.clone()));
                    form.push(("client_secret".to_owned(), secret.clone()));
                }
                ClientAuth::Assertion(defect) => {
                    let claims = json!({
                        "iss": "rp-jwt", "sub": "rp-jwt",
                        "aud": format!("{issuer}/as/token.oauth2"),
                        "exp": now + 60, "iat": now, "jti": unique("assertion"),
                    });
                    valid_jwt |= defect.is_none();
                    form.push((
                        "client_assertion_type".to_owned(),
                        "urn:ietf:params:oauth:client-assertion-type:jwt-bearer".to_owned(),
                    ));
                    form.push((
                        "client_assertion".to_owned(),
                        client_jwt(claims, defect.as_ref(), &client_key, &stranger_key),
                    ));
                }
            }
            let body = match &case.raw {
                Some(raw) => raw.clone(),
                None => form
                    .iter()
                    .map(|(name, value)| format!("{}={}", encode(name), encode(value)))
                    .collect::<Vec<_>>()
                    .join("&")
                    .into_bytes(),
            };
            if let Some(content_type) = &case.content_type {
                request = request.header("Content-Type", header_value(content_type));
            }
            let answer = target.send(request.body(body)).await?;
            target.alive().await?;
            // A valid client JWT is spent (its jti kept) even when the request it
            // authenticates is refused: that marker is the one write allowed.
            let spared: &[&str] = if valid_jwt { &["client-jti:{"] } else { &[] };
            if answer.status == 200 && case.endpoint == 2 {
                let body: Value = serde_json::from_slice(&answer.body).unwrap_or_default();
                if body != json!({ "active": false }) {
                    return Err(fail(format!("an introspection found something: {body}")));
                }
            } else {
                answer.oauth_error()?;
            }
            target.unchanged(spared, &answer)
        })
    });
    target.report("CIBA");
}

// ---------------------------------------------------------------------------------------
// The Adapter API: flow starts, with message templates and dynamic parameters.

/// What makes a flow start invalid.
#[derive(Clone, Debug)]
enum StartDefect {
    MissingParam(&'static str),
    LongValue(usize),
    BadName(String),
    Deceptive(char),
    TooMany(usize),
    Template(Option<Value>),
    ParamType(Value),
    Kind(String),
    UnknownField(String),
    UserId(String),
    ReturnUrl(String),
    ClientIp(String),
    Truncated(Index),
    ContentType(Vec<u8>),
    Credentials(String),
}

fn start_defect() -> BoxedStrategy<StartDefect> {
    prop_oneof![
        select(vec!["amount", "payee"]).prop_map(StartDefect::MissingParam),
        (257usize..400).prop_map(StartDefect::LongValue),
        prop_oneof![
            Just(String::new()),
            "[a-z]{65,80}",
            "[a-z]{0,5}[^A-Za-z0-9_.-][a-z]{0,5}",
        ]
        .prop_map(StartDefect::BadName),
        select(vec![
            '\u{0}',
            '\u{7}',
            '\u{1b}',
            '\u{202e}',
            '\u{2066}',
            '\u{200b}',
            '\u{feff}',
            '\u{2028}',
            '\u{e000}',
            '\u{0336}',
            '\u{2800}',
            '\u{3164}',
            '\u{fe0f}',
            '\u{e0041}',
            '\u{20dd}',
        ])
        .prop_map(StartDefect::Deceptive),
        (33usize..40).prop_map(StartDefect::TooMany),
        proptest::option::of(prop_oneof![
            "[a-z]{0,12}"
                .prop_filter("not the template", |id| id != "transfer")
                .prop_map(Value::String),
            json_value().prop_filter("not a string", |value| !value.is_string()),
        ])
        .prop_map(StartDefect::Template),
        json_value()
            .prop_filter("not a string", |value| !value.is_string())
            .prop_map(StartDefect::ParamType),
        "[a-z_]{0,12}".prop_map(|kind| StartDefect::Kind(format!("x{kind}"))),
        "[a-zA-Z]{1,12}".prop_map(|name| StartDefect::UnknownField(format!("x{name}"))),
        prop_oneof![
            Just(String::new()),
            "[a-z]{0,5}[{}]{1,2}[a-z]{0,5}",
            "[a-z]{300,400}"
        ]
        .prop_map(StartDefect::UserId),
        prop_oneof![
            Just("javascript:alert(1)".to_owned()),
            "[a-z ]{1,20}",
            Just("data:text/html,x".to_owned())
        ]
        .prop_map(StartDefect::ReturnUrl),
        prop_oneof![
            Just("300.1.1.1".to_owned()),
            "[a-z]{1,10}",
            Just("1.2.3".to_owned()),
            Just("::g".to_owned())
        ]
        .prop_map(StartDefect::ClientIp),
        any::<Index>().prop_map(StartDefect::Truncated),
        prop_oneof![Just(b"text/plain".to_vec()), vec(any::<u8>(), 0..30)]
            .prop_filter("not JSON", |raw| !String::from_utf8_lossy(raw)
                .to_ascii_lowercase()
                .contains("json"))
            .prop_map(StartDefect::ContentType),
        text()
            .prop_filter("not the secret", |secret| secret != FEDERATION.1)
            .prop_map(StartDefect::Credentials),
    ]
    .boxed()
}

#[derive(Clone, Debug)]
struct StartCase {
    amount: String,
    payee: String,
    extra: BTreeMap<String, String>,
    defect: StartDefect,
}

fn start_case() -> impl Strategy<Value = StartCase> {
    let value = "[a-zA-Z0-9 .,€$_{}-]{0,20}";
    (
        value,
        value,
        btree_map("[a-z]{1,8}", "[a-z0-9${}]{0,10}", 0..3),
        start_defect(),
    )
        .prop_map(|(amount, payee, extra, defect)| StartCase {
            amount,
            payee,
            extra,
            defect,
        })
}

#[test]
fn adapter_api_flow_starts_templates_and_parameters() {
    let target = Target::start(Figment::new());
    target.settle();
    let newcomer = unique("dave");
    run("adapter API", start_case(), |case| {
        target.block_on(async {
            let mut body = transfer_request(&newcomer, &case.amount, &case.payee);
            for (name, value) in &case.extra {
                body["dynamicParams"][name] = json!(value);
            }
            let params = &mut body["dynamicParams"];
            let mut content_type = b"application/json".to_vec();
            let mut secret = FEDERATION.1.to_owned();
            let mut cut = None;
            match &case.defect {
                StartDefect::MissingParam(name) => {
                    params.as_object_mut().unwrap().remove(*name);
                }
                StartDefect::LongValue(len) => params["amount"] = json!("9".repeat(*len)),
                StartDefect::BadName(name) => params[name.as_str()] = json!("1"),
                StartDefect::Deceptive(c) => {
                    params["payee"] = json!(format!("{}{c}{}", case.payee, case.amount))
                }
                StartDefect::TooMany(count) => {
                    for index in 0..*count {
                        params[format!("p{index}")] = json!("1");
                    }
                }
                StartDefect::Template(None) => {
                    body.as_object_mut().unwrap().remove("templateId");
                }
                StartDefect::Template(Some(id)) => body["templateId"] = id.clone(),
                StartDefect::ParamType(value) => params["amount"] = value.clone(),
                StartDefect::Kind(kind) => body["kind"] = json!(kind),
                StartDefect::UnknownField(name) => body[name.as_str()] = json!(true),
                StartDefect::UserId(id) => body["user"]["id"] = json!(id),
                StartDefect::ReturnUrl(url) => body["returnUrl"] = json!(url),
                StartDefect::ClientIp(ip) => body["clientIp"] = json!(ip),
                StartDefect::Truncated(at) => cut = Some(*at),
                StartDefect::ContentType(raw) => content_type = raw.clone(),
                StartDefect::Credentials(wrong) => secret = wrong.clone(),
            }
            let mut raw = body.to_string().into_bytes();
            if let Some(at) = cut {
                raw.truncate(at.index(raw.len()));
            }
            let request = target
                .app
                .http
                .post(target.app.url("/adapter/v1/flows"))
                .basic_auth(FEDERATION.0, Some(secret))
                .header("Content-Type", header_value(&content_type))
                .body(raw);
            let answer = target.send(request).await?;
            target.alive().await?;
            answer.problem()?;
            target.unchanged(&[], &answer)
        })
    });
    target.report("adapter API");
}
