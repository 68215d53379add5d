//! The test kit: a real `redis-server` per test, the application on port 0, typed helpers.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use assent::Application;
use assent_core::store::{MemoryStore, RedisOptions, RedisStore, Store};
use assent_core::{Adapter, Config};
use assent_proto::authn::{ActionRequest, AuthnState, ErrorBody, ErrorDetail, StatusName};
use figment::Figment;
use prometheus::IntCounter;

pub mod topology;

/// The admin token of the demo configuration.
pub const ADMIN_TOKEN: &str = "demo-admin-token";

/// The repository root (where `conf/assent.toml` lives).
pub fn repo_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// A port nobody listens on right now.
///
/// Ports come from below Linux's ephemeral range (32768 and up), where the kernel picks
/// the local ports of outgoing connections: a port from that range, free when checked,
/// could be taken by one of the many connections the tests open before the server binds
/// it. Each is handed out once per run of the test binary.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    const FIRST: u32 = 12_000;
    const SPAN: u32 = 20_000;
    // A different start per process, so that two test binaries running at once (or an
    // earlier run's leftovers) do not walk the same sequence.
    static NEXT: AtomicU32 = AtomicU32::new(u32::MAX);
    let _ = NEXT.compare_exchange(
        u32::MAX,
        std::process::id().wrapping_mul(7919) % SPAN,
        Ordering::AcqRel,
        Ordering::Acquire,
    );
    for _ in 0..SPAN {
        let port = (FIRST + NEXT.fetch_add(1, Ordering::AcqRel) % SPAN) as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port")
}

/// A short random name, for key prefixes and directories.
pub fn unique(label: &str) -> String {
    format!("{label}-{:016x}", rand::random::<u64>())
}

/// Logs from the code under test, only when `TEST_LOG` is set.
fn init_test_log() {
    if std::env::var_os("TEST_LOG").is_some() {
        assent::telemetry::init(assent::telemetry::LogFormat::Text);
    }
}

/// A real `redis-server`, started on a free port with its own data directory (AOF on, so
/// that a restart keeps the data as in production), stopped when dropped.
pub struct RedisServer {
    port: u16,
    dir: PathBuf,
    child: Option<Child>,
    /// The AOF fsync policy (`always`, `everysec`).
    appendfsync: &'static str,
    /// The extra arguments of the last launch, used again by [`RedisServer::relaunch`].
    extra: Vec<String>,
}

/// The commands a Redis server runs, as `MONITOR` reports them.
pub struct Monitor {
    stream: TcpStream,
    lines: Arc<std::sync::Mutex<Vec<String>>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Monitor {
    /// Stops watching; returns, in order, the names of the commands clients sent (one per
    /// round trip: a script is one `evalsha`), leaving out those run inside scripts.
    pub fn stop(mut self) -> Vec<String> {
        // MONITOR lines arrive asynchronously: let the last ones land.
        std::thread::sleep(Duration::from_millis(200));
        let _ = self.stream.shutdown(std::net::Shutdown::Both);
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
        let lines = self.lines.lock().expect("not poisoned");
        lines
            .iter()
            // `+<time> [<db> <client>] "<COMMAND>" ...`; `<client>` is `lua` inside scripts.
            .filter_map(|line| {
                let (source, command) = line.split_once("] \"")?;
                (!source.ends_with(" lua")).then(|| {
                    command
                        .split('"')
                        .next()
                        .unwrap_or_default()
                        .to_ascii_lowercase()
                })
            })
            .collect()
    }
}

impl RedisServer {
    /// Starts a server and waits until it answers.
    pub fn start() -> Self {
        let mut server = Self::reserve();
        server.launch();
        server
    }

    /// A server with a port and a directory, not started yet ([`RedisServer::launch_with`]).
    pub fn reserve() -> Self {
        let dir = std::env::temp_dir().join(unique("assent-redis"));
        std::fs::create_dir_all(&dir).expect("cannot create the Redis directory");
        Self {
            port: free_port(),
            dir,
            child: None,
            appendfsync: "always",
            extra: Vec::new(),
        }
    }

    /// Starts a server whose AOF is fsynced as `policy` says (`always`, `everysec`).
    pub fn start_with_appendfsync(policy: &'static str) -> Self {
        let mut server = Self::reserve();
        server.appendfsync = policy;
        server.launch();
        server
    }

    /// `redis://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    fn launch(&mut self) {
        self.launch_with(&[]);
    }

    /// Starts the server with extra arguments (`--requirepass`...) and waits until it
    /// answers.
    pub fn launch_with(&mut self, extra: &[&str]) {
        self.extra = extra.iter().map(|arg| (*arg).to_owned()).collect();
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(extra)
            .args([
                "--save",
                "",
                "--appendonly",
                "yes",
                "--appendfsync",
                self.appendfsync,
            ])
            .arg("--dir")
            .arg(&self.dir)
            .args(["--protected-mode", "no", "--loglevel", "warning"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server is not installed: the README's test command installs it");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if self.answers_ping() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("redis-server did not start on port {}", self.port);
    }

    fn answers_ping(&self) -> bool {
        let Ok(mut stream) = TcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
        let mut reply = [0u8; 7];
        // A server with a password answers, but refuses: `-NOAUTH ...`.
        stream.write_all(b"PING\r\n").is_ok()
            && stream.read_exact(&mut reply).is_ok()
            && (&reply == b"+PONG\r\n" || &reply == b"-NOAUTH")
    }

    /// Sends one command over a fresh connection and returns the raw RESP reply.
    pub fn command(&self, args: &[&str]) -> String {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).expect("Redis is up");
        let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
        let mut request = format!("*{}\r\n", args.len());
        for arg in args {
            request.push_str(&format!("${}\r\n{arg}\r\n", arg.len()));
        }
        stream
            .write_all(request.as_bytes())
            .expect("write to Redis");
        let mut reply = Vec::new();
        let mut buffer = [0u8; 8192];
        loop {
            match stream.read(&mut buffer) {
                Ok(0) | Err(_) => break,
                Ok(read) => {
                    reply.extend_from_slice(&buffer[..read]);
                    if reply_complete(&reply) {
                        break;
                    }
                }
            }
        }
        String::from_utf8_lossy(&reply).into_owned()
    }

    /// Calls per command since the last `CONFIG RESETSTAT`, from `INFO commandstats`.
    pub fn command_stats(&self) -> Vec<(String, u64)> {
        self.command(&["INFO", "commandstats"])
            .lines()
            .filter_map(|line| {
                let rest = line.strip_prefix("cmdstat_")?;
                let (name, stats) = rest.split_once(':')?;
                let calls = stats
                    .strip_prefix("calls=")?
                    .split(',')
                    .next()?
                    .parse()
                    .ok()?;
                Some((name.to_owned(), calls))
            })
            .collect()
    }

    /// Watches every command the server runs (`MONITOR`), until [`Monitor::stop`].
    pub fn monitor(&self) -> Monitor {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).expect("Redis is up");
        stream.write_all(b"MONITOR\r\n").expect("write to Redis");
        let mut reader = std::io::BufReader::new(stream.try_clone().expect("a second handle"));
        let mut ok = String::new();
        std::io::BufRead::read_line(&mut reader, &mut ok).expect("MONITOR answers");
        assert_eq!(ok.trim_end(), "+OK", "MONITOR is on");
        let lines = Arc::new(std::sync::Mutex::new(Vec::new()));
        let collected = Arc::clone(&lines);
        let reader = std::thread::spawn(move || {
            for line in std::io::BufRead::lines(reader) {
                let Ok(line) = line else { break };
                collected.lock().expect("not poisoned").push(line);
            }
        });
        Monitor {
            stream,
            lines,
            reader: Some(reader),
        }
    }

    /// Stops the server cleanly (SIGTERM: the AOF is flushed) and waits for it to exit.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            let _ = child.wait();
        }
    }

    /// Kills the server as a crash would (SIGKILL: no AOF flush, no goodbye to clients)
    /// and waits for it to be gone.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Freezes (`SIGSTOP`) or thaws (`SIGCONT`) the server: frozen, it keeps its
    /// connections open but answers nothing, as a stalled host would.
    pub fn freeze(&self, frozen: bool) {
        if let Some(child) = &self.child {
            let signal = if frozen { "-STOP" } else { "-CONT" };
            let _ = Command::new("kill")
                .args([signal, &child.id().to_string()])
                .status();
        }
    }

    /// Whether the server was started and not stopped or killed since.
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// Starts it again on the same port and data directory, with the arguments of the
    /// last launch; it reloads its AOF.
    pub fn relaunch(&mut self) {
        let extra = std::mem::take(&mut self.extra);
        let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
        self.launch_with(&extra);
    }

    /// Starts it again on the same port and data directory.
    pub fn restart(&mut self) {
        self.stop();
        self.launch();
    }

    /// A store client of this server, as an assent instance would have.
    pub async fn store(&self, key_prefix: &str) -> Arc<dyn Store> {
        let options = RedisOptions {
            url: self.url(),
            key_prefix: key_prefix.to_owned(),
            timeout: Duration::from_millis(1000),
            replica_acks: 0,
        };
        let errors = IntCounter::new("test_store_errors", "test").expect("counter");
        Arc::new(
            RedisStore::connect(options, errors)
                .await
                .expect("cannot connect to the test Redis"),
        )
    }
}

/// Whether a RESP reply (a simple line, or one bulk string) has fully arrived.
fn reply_complete(reply: &[u8]) -> bool {
    let text = String::from_utf8_lossy(reply);
    match text.strip_prefix('$') {
        Some(bulk) => bulk
            .split_once("\r\n")
            .and_then(|(len, body)| len.parse::<usize>().ok().map(|len| body.len() >= len + 2))
            .unwrap_or(false),
        None => text.ends_with("\r\n"),
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// An in-process memory store.
pub fn memory_store() -> Arc<dyn Store> {
    Arc::new(MemoryStore::new())
}

/// Which backend a test application uses.
#[derive(Clone, Copy)]
pub enum Backend<'a> {
    /// The embedded default.
    Memory,
    /// A shared Redis, with a key prefix of the test's own.
    Redis(&'a RedisServer),
    /// A shared Redis Cluster.
    Cluster(&'a topology::RedisCluster),
    /// A shared Sentinel-watched master.
    Sentinel(&'a topology::RedisSentinel),
}

impl Backend<'_> {
    /// The `store` setting that names this backend.
    pub fn store_url(&self) -> String {
        match self {
            Backend::Memory => "memory".to_owned(),
            Backend::Redis(redis) => redis.url(),
            Backend::Cluster(cluster) => cluster.url(),
            Backend::Sentinel(sentinel) => sentinel.url(),
        }
    }
}

/// The demo configuration, on port 0, with the given backend and overrides on top.
pub fn test_config(backend: Backend<'_>, key_prefix: &str, overrides: Figment) -> Config {
    let store = backend.store_url();
    // A known port, so that the public URL (the OpenID issuer) is the real address.
    let port = free_port();
    let figment = Config::figment(&repo_root().join("conf/assent.toml"))
        .merge(("listen", format!("127.0.0.1:{port}")))
        .merge(("public_url", format!("http://127.0.0.1:{port}")))
        .merge(("store", store))
        .merge(("store_options.key_prefix", key_prefix))
        .merge(("store_options.timeout_ms", 500))
        .merge(("http.workers", 1))
        // Development sender output stays out of the working tree.
        .merge((
            "delivery.file.path",
            std::env::temp_dir().join(unique("assent-outbox")),
        ))
        .merge(overrides);
    Config::from_figment(figment).expect("the test configuration is valid")
}

/// A running assent instance and an HTTP client for it.
pub struct TestApp {
    /// `http://127.0.0.1:PORT`.
    pub address: String,
    /// The instance's domain service (for reaching its store directly).
    pub adapter: Adapter,
    /// The Redis key prefix of its state.
    pub key_prefix: String,
    /// A client with no cookies and no redirects, as an API client would be.
    pub http: reqwest::Client,
    /// The `_pf_authn_api_state` of each flow this client bound, echoed as a cookieless
    /// client does.
    states: std::sync::Mutex<std::collections::HashMap<String, String>>,
    handle: actix_web::dev::ServerHandle,
}

impl TestApp {
    /// Starts an instance on the demo configuration.
    pub async fn spawn(backend: Backend<'_>) -> Self {
        Self::spawn_with(backend, &unique("t"), Figment::new()).await
    }

    /// Starts an instance with a given key prefix (instances sharing one Redis and one
    /// prefix share their state) and configuration overrides.
    pub async fn spawn_with(backend: Backend<'_>, key_prefix: &str, overrides: Figment) -> Self {
        init_test_log();
        let key_prefix = format!("{key_prefix}:");
        let config = test_config(backend, &key_prefix, overrides);
        let application = Application::build(config)
            .await
            .expect("the application starts");
        let address = format!("http://{}", application.address());
        let adapter = application.adapter().clone();
        let handle = application.handle();
        tokio::spawn(application.run_until_stopped());
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(60))
            .build()
            .expect("an HTTP client");
        Self {
            address,
            adapter,
            key_prefix,
            http,
            states: Default::default(),
            handle,
        }
    }

    /// A URL on this instance.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    /// `GET path`.
    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.http
            .get(self.url(path))
            .send()
            .await
            .expect("the request reaches the server")
    }

    /// `GET path` with the admin token.
    pub async fn admin_get(&self, path: &str) -> reqwest::Response {
        self.http
            .get(self.url(path))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .expect("the request reaches the server")
    }

    /// Stops the instance (as SIGTERM would).
    pub async fn stop(self) {
        self.handle.stop(true).await;
    }
}

/// Reads a problem+json body, checking the content type.
pub async fn problem(response: reqwest::Response) -> serde_json::Value {
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert_eq!(content_type, "application/problem+json", "a problem body");
    response.json().await.expect("a JSON problem body")
}

/// The `assent` binary with the demo configuration, as the README's quick start runs it.
pub fn assent_command() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_assent"));
    command.current_dir(repo_root());
    command
}

/// A running `assent serve` process, stopped (SIGKILL) if still alive when dropped.
pub struct AssentProcess {
    pub child: Child,
    pub address: String,
}

impl AssentProcess {
    /// Runs `assent serve` with the given extra environment on a free port and waits until
    /// `/healthz` answers.
    pub async fn serve(args: &[&str], env: &[(&str, String)]) -> Self {
        Self::serve_in(repo_root(), args, env).await
    }

    /// As [`AssentProcess::serve`], with `dir` as the working directory.
    pub async fn serve_in(dir: &Path, args: &[&str], env: &[(&str, String)]) -> Self {
        Self::launch(dir, args, env, None).await
    }

    /// As [`AssentProcess::serve`], logging to the file `log` instead of a pipe: for
    /// processes that log much and are never [`AssentProcess::terminate`]d (a pipe
    /// nobody reads would fill up and stall them).
    pub async fn serve_logging_to(args: &[&str], env: &[(&str, String)], log: &Path) -> Self {
        Self::launch(repo_root(), args, env, Some(log)).await
    }

    async fn launch(dir: &Path, args: &[&str], env: &[(&str, String)], log: Option<&Path>) -> Self {
        let port = free_port();
        let mut command = assent_command();
        command
            .current_dir(dir)
            .arg("serve")
            .args(args)
            .env("ASSENT_LISTEN", format!("127.0.0.1:{port}"))
            .env("ASSENT_HTTP__WORKERS", "1");
        match log {
            Some(log) => {
                let file = std::fs::File::create(log).expect("a log file");
                let copy = file.try_clone().expect("a second handle");
                command.stdout(file).stderr(copy);
            }
            None => {
                command.stdout(Stdio::piped()).stderr(Stdio::piped());
            }
        }
        for (key, value) in env {
            command.env(key, value);
        }
        let child = command.spawn().expect("the assent binary runs");
        let process = Self {
            child,
            address: format!("http://127.0.0.1:{port}"),
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if reqwest::get(format!("{}/healthz", process.address))
                .await
                .is_ok()
            {
                return process;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("assent serve did not come up");
    }

    /// Kills the process as a crash would (SIGKILL) and waits for it to be gone.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Sends SIGTERM and returns the exit status and everything it logged.
    pub fn terminate(mut self) -> (std::process::ExitStatus, String) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let child = std::mem::replace(&mut self.child, Command::new("true").spawn().expect("true"));
        let output = child.wait_with_output().expect("assent exits");
        let mut logs = String::from_utf8_lossy(&output.stdout).into_owned();
        logs.push_str(&String::from_utf8_lossy(&output.stderr));
        (output.status, logs)
    }
}

impl Drop for AssentProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The demo federation server's credentials.
pub const FEDERATION: (&str, &str) = ("demo-federation", "demo-federation-secret");

/// A flow start for `user` (an existing or new user id) with no dynamic parameters.
pub fn oob_request(user: &str) -> serde_json::Value {
    serde_json::json!({
        "kind": "oob",
        "user": { "id": user, "username": user, "email": format!("{user}@example.com") },
        "application": { "name": "Demo Bank", "id": "bank", "iconUrl": "https://bank.example/icon.png" },
        "clientIp": "203.0.113.7",
    })
}

/// A transaction approval for `user` using the demo `transfer` template.
pub fn transfer_request(user: &str, amount: &str, payee: &str) -> serde_json::Value {
    serde_json::json!({
        "kind": "transaction",
        "templateId": "transfer",
        "user": { "id": user, "username": user },
        "application": { "name": "Demo Bank" },
        "dynamicParams": { "amount": amount, "payee": payee },
    })
}

/// A device paired through the real Device API by the device SDK, the client a mobile app
/// embeds and the simulator is built on.
pub struct TestDevice {
    /// The SDK's device.
    pub device: assent_device_sdk::Device,
}

impl TestDevice {
    /// Its id.
    pub fn id(&self) -> &str {
        self.device.id()
    }

    /// The requests waiting for it, after long-polling up to `wait` seconds.
    pub async fn pending(&self, wait: u64) -> Vec<assent_proto::device::PendingRequest> {
        self.device.pending(wait).await.expect("pending requests")
    }

    /// The one request waiting for it (waits up to 10 s for it to arrive).
    pub async fn one_pending(&self) -> assent_proto::device::PendingRequest {
        let mut pending = self.pending(10).await;
        assert_eq!(pending.len(), 1, "exactly one pending request: {pending:?}");
        pending.remove(0)
    }

    /// Approves (or denies) the one pending request.
    pub async fn answer_pending(&self, approve: bool) -> String {
        let request = self.one_pending().await;
        let decision = if approve {
            assent_proto::device::Decision::Approve
        } else {
            assent_proto::device::Decision::Deny
        };
        self.device
            .answer(&request, decision, None)
            .await
            .expect("the answer is accepted")
            .status
    }

    /// A fresh `Authorization` header value.
    pub fn authorization(&self) -> String {
        self.device.authorization().expect("a token")
    }

    /// The app's current one-time passcode (the simulator's, from the seed given at
    /// pairing).
    pub fn current_otp(&self) -> String {
        assent::device::current_otp(&self.device).expect("a passcode seed")
    }
}

/// Pairs a simulated phone called `name` with the pairing key `key`.
pub async fn pair_phone(
    address: &str,
    key: &str,
    name: &str,
) -> Result<assent_device_sdk::Device, assent_device_sdk::SdkError> {
    assent_device_sdk::Device::pair(address, key, &assent::device::simulator_info(name)).await
}

impl TestApp {
    /// `POST path` with the admin token.
    pub async fn admin_post(&self, path: &str) -> reqwest::Response {
        self.http
            .post(self.url(path))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .expect("the request reaches the server")
    }

    /// A pairing key for `user` from the Admin API.
    pub async fn pairing_key(&self, user: &str) -> String {
        let response = self
            .admin_post(&format!("/admin/v1/users/{user}/pairing-keys"))
            .await;
        assert_eq!(response.status(), 201);
        let body: serde_json::Value = response.json().await.unwrap();
        body["pairingKey"].as_str().unwrap().to_owned()
    }

    /// Pairs a new simulated device with `user`.
    pub async fn pair_device(&self, user: &str) -> TestDevice {
        let key = self.pairing_key(user).await;
        let device = pair_phone(&self.address, &key, "test phone")
            .await
            .expect("pairing succeeds");
        TestDevice { device }
    }

    /// `POST /adapter/v1/flows` as the demo federation server.
    pub async fn start_flow_raw(&self, body: &serde_json::Value) -> reqwest::Response {
        self.http
            .post(self.url("/adapter/v1/flows"))
            .basic_auth(FEDERATION.0, Some(FEDERATION.1))
            .json(body)
            .send()
            .await
            .expect("the request reaches the server")
    }

    /// Starts a flow and enters it as PingFederate's widget does (a GET, which binds the
    /// flow to this client, then `authenticate {}` on `AUTHENTICATION_REQUIRED`), so that
    /// policy has been applied and the push or the code sent; returns its id.
    pub async fn start_flow(&self, body: &serde_json::Value) -> String {
        let flow = self.start_flow_unauthenticated(body).await;
        if self.state(&flow).await.status.name() == StatusName::AuthenticationRequired {
            self.act_ok(&flow, ActionRequest::authenticate_browser())
                .await;
        }
        flow
    }

    /// Enters a flow started with [`Self::start_flow_unauthenticated`] as the widget does
    /// (a GET, then `authenticate {}`): the state after it.
    pub async fn enter(&self, flow: &str) -> AuthnState {
        let state = self.state(flow).await;
        assert_eq!(state.status.name(), StatusName::AuthenticationRequired);
        self.act_ok(flow, ActionRequest::authenticate_browser())
            .await
    }

    /// Starts a flow and returns its id, leaving it in `AUTHENTICATION_REQUIRED` (unread,
    /// unbound): for tests of the entry itself.
    pub async fn start_flow_unauthenticated(&self, body: &serde_json::Value) -> String {
        let response = self.start_flow_raw(body).await;
        assert_eq!(response.status(), 201, "flow started");
        let created: serde_json::Value = response.json().await.unwrap();
        assert!(created["authnApiUrl"].as_str().unwrap().ends_with(&format!(
            "/pf-ws/authn/flows/{}",
            created["flowId"].as_str().unwrap()
        )));
        created["flowId"].as_str().unwrap().to_owned()
    }

    /// `GET /adapter/v1/flows/{id}/result` as the demo federation server.
    pub async fn result(&self, flow: &str) -> reqwest::Response {
        self.http
            .get(self.url(&format!("/adapter/v1/flows/{flow}/result")))
            .basic_auth(FEDERATION.0, Some(FEDERATION.1))
            .send()
            .await
            .expect("the request reaches the server")
    }

    /// The binding secret this client holds for `flow`, if it bound it.
    pub fn binding(&self, flow: &str) -> Option<String> {
        self.states.lock().unwrap().get(flow).cloned()
    }

    /// Makes this client present `secret` for `flow` from now on: the same browser talking
    /// to another instance.
    pub fn present_binding(&self, flow: &str, secret: String) {
        self.states.lock().unwrap().insert(flow.to_owned(), secret);
    }

    fn with_binding(
        &self,
        request: reqwest::RequestBuilder,
        flow: &str,
    ) -> reqwest::RequestBuilder {
        match self.binding(flow) {
            Some(state) => request.header("X-PF-Authn-API-State", state),
            None => request,
        }
    }

    /// The flow's state, as the widget's GET sees it (the first GET binds the flow to this
    /// client, which then echoes `_pf_authn_api_state` as a cookieless client does).
    pub async fn state(&self, flow: &str) -> AuthnState {
        let response = self.get_state_raw(flow).await;
        assert_eq!(response.status(), 200);
        let state: AuthnState = response.json().await.unwrap();
        self.remember_binding(flow, &state);
        state
    }

    /// Keeps the binding secret an answer carries (the first request of any method binds).
    fn remember_binding(&self, flow: &str, state: &AuthnState) {
        if let Some(secret) = &state.authn_api_state {
            self.states
                .lock()
                .unwrap()
                .insert(flow.to_owned(), secret.clone());
        }
    }

    /// The flow's state as raw JSON, as this client (for tests of the wire itself).
    pub async fn state_json(&self, flow: &str) -> serde_json::Value {
        let response = self.get_state_raw(flow).await;
        assert_eq!(response.status(), 200);
        response.json().await.unwrap()
    }

    async fn get_state_raw(&self, flow: &str) -> reqwest::Response {
        let request = self
            .http
            .get(self.url(&format!("/pf-ws/authn/flows/{flow}")));
        self.with_binding(request, flow).send().await.unwrap()
    }

    /// `poll` with `?wait=`, as this client.
    pub async fn poll(&self, flow: &str, wait: u64) -> AuthnState {
        let request = self
            .http
            .post(self.url(&format!("/pf-ws/authn/flows/{flow}?wait={wait}")))
            .header("X-XSRF-Header", "PingFederate")
            .header("Content-Type", "application/vnd.pingidentity.poll+json");
        let response = self.with_binding(request, flow).send().await.unwrap();
        assert_eq!(response.status(), 200);
        let state: AuthnState = response.json().await.unwrap();
        self.remember_binding(flow, &state);
        state
    }

    /// Posts an action the way PingFederate's widget does (action id in the content type,
    /// `X-XSRF-Header: PingFederate`, no body for an action without parameters): the next
    /// state, or the refusal.
    pub async fn act(&self, flow: &str, action: ActionRequest) -> Result<AuthnState, Refusal> {
        let body = action
            .has_parameters()
            .then(|| serde_json::to_string(&action).expect("a body"));
        let response = self.post_action(flow, action.id().as_str(), body).await;
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        if status == 200 {
            let state: AuthnState =
                serde_json::from_str(&text).unwrap_or_else(|error| panic!("{error}: {text}"));
            self.remember_binding(flow, &state);
            Ok(state)
        } else {
            let body =
                serde_json::from_str(&text).unwrap_or_else(|error| panic!("{error}: {text}"));
            Err(Refusal { status, body })
        }
    }

    /// [`Self::act`], expecting a new state.
    pub async fn act_ok(&self, flow: &str, action: ActionRequest) -> AuthnState {
        let id = action.id();
        match self.act(flow, action).await {
            Ok(state) => state,
            Err(refusal) => panic!("{} refused: {refusal:?}", id.as_str()),
        }
    }

    /// [`Self::act`], expecting a refusal.
    pub async fn act_err(&self, flow: &str, action: ActionRequest) -> Refusal {
        let id = action.id();
        match self.act(flow, action).await {
            Ok(state) => panic!("{} accepted: {state:?}", id.as_str()),
            Err(refusal) => refusal,
        }
    }

    /// Posts an action id with a raw body, as the widget would (for tests of the wire
    /// itself: malformed bodies, unknown actions, `{}` instead of no body).
    pub async fn act_raw(
        &self,
        flow: &str,
        action: &str,
        body: Option<serde_json::Value>,
    ) -> reqwest::Response {
        self.post_action(flow, action, body.map(|body| body.to_string()))
            .await
    }

    async fn post_action(
        &self,
        flow: &str,
        action: &str,
        body: Option<String>,
    ) -> reqwest::Response {
        let mut request = self
            .http
            .post(self.url(&format!("/pf-ws/authn/flows/{flow}")))
            .header("X-XSRF-Header", "PingFederate")
            .header("Accept", "application/json")
            .header(
                "Content-Type",
                format!("application/vnd.pingidentity.{action}+json"),
            );
        if let Some(body) = body {
            request = request.body(body);
        }
        self.with_binding(request, flow)
            .send()
            .await
            .expect("the request reaches the server")
    }
}

/// An Authentication API refusal: the HTTP status and the Ping error body.
#[derive(Debug)]
pub struct Refusal {
    /// The HTTP status.
    pub status: u16,
    /// The error body.
    pub body: ErrorBody,
}

impl Refusal {
    /// The first detail (every refusal has one).
    pub fn detail(&self) -> &ErrorDetail {
        self.body.details.first().expect("a detail")
    }
}

/// The action ids a state offers in `_links`, sorted.
pub fn links(state: &AuthnState) -> Vec<String> {
    let mut links: Vec<String> = state
        .links
        .keys()
        .map(|action| action.as_str().to_owned())
        .collect();
    links.sort();
    links
}

/// The fields of `state`'s status, which must be `$variant` (else panics with the state).
macro_rules! expect_status {
    ($state:expr, $variant:ident) => {
        match &$state.status {
            assent_proto::authn::Status::$variant(fields) => fields,
            _ => panic!("expected {}: {:?}", stringify!($variant), $state),
        }
    };
}
pub(crate) use expect_status;

/// Runs each named `async fn(Backend<'_>)` as two tests: on memory and on a real Redis.
macro_rules! on_both_backends {
    ($($check:ident),* $(,)?) => {
        mod memory {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $check() {
                super::$check($crate::support::Backend::Memory).await;
            })*
        }
        mod redis {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $check() {
                let redis = $crate::support::RedisServer::start();
                super::$check($crate::support::Backend::Redis(&redis)).await;
            })*
        }
    };
}
pub(crate) use on_both_backends;

/// One notification a [`Receiver`] got.
#[derive(Debug)]
pub struct Notification {
    /// Its `Authorization` header.
    pub authorization: Option<String>,
    /// Its `Content-Type` header.
    pub content_type: Option<String>,
    /// Its JSON body.
    pub body: serde_json::Value,
}

/// A relying party's notification endpoint: a real HTTP server on a free port that
/// records what it is sent and answers 204.
pub struct Receiver {
    /// Where to send notifications.
    pub url: String,
    received: tokio::sync::mpsc::UnboundedReceiver<Notification>,
    handle: actix_web::dev::ServerHandle,
}

impl Receiver {
    /// Starts one that accepts everything (204).
    pub async fn start() -> Self {
        Self::answering(204).await
    }

    /// Starts one that answers every notification with `status` (500 to test retries).
    pub async fn answering(status: u16) -> Self {
        use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
        let (sender, received) = tokio::sync::mpsc::unbounded_channel::<Notification>();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/ciba/notify", listener.local_addr().unwrap());
        let server = HttpServer::new(move || {
            let sender = sender.clone();
            App::new().route(
                "/ciba/notify",
                web::post().to(move |request: HttpRequest, body: web::Bytes| {
                    let sender = sender.clone();
                    async move {
                        let header = |name: &str| {
                            request
                                .headers()
                                .get(name)
                                .and_then(|value| value.to_str().ok())
                                .map(str::to_owned)
                        };
                        let body = serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
                        let _ = sender.send(Notification {
                            authorization: header("authorization"),
                            content_type: header("content-type"),
                            body,
                        });
                        HttpResponse::build(
                            actix_web::http::StatusCode::from_u16(status)
                                .unwrap_or(actix_web::http::StatusCode::NO_CONTENT),
                        )
                        .finish()
                    }
                }),
            )
        })
        .workers(1)
        .listen(listener)
        .unwrap()
        .run();
        let handle = server.handle();
        tokio::spawn(server);
        Self {
            url,
            received,
            handle,
        }
    }

    /// How many notifications have arrived and not been read yet (no waiting).
    pub fn received_now(&mut self) -> usize {
        let mut count = 0;
        while self.received.try_recv().is_ok() {
            count += 1;
        }
        count
    }

    /// How many notifications arrive until none came for `quiet`.
    pub async fn count_until_quiet(&mut self, quiet: Duration) -> usize {
        let mut count = 0;
        while tokio::time::timeout(quiet, self.received.recv())
            .await
            .ok()
            .flatten()
            .is_some()
        {
            count += 1;
        }
        count
    }

    /// The next notification (waits up to 15 s).
    pub async fn next(&mut self) -> Notification {
        tokio::time::timeout(Duration::from_secs(15), self.received.recv())
            .await
            .expect("a notification arrives")
            .expect("the receiver is running")
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let handle = self.handle.clone();
        drop(handle.stop(false));
    }
}

/// A self-signed certificate for `localhost` and 127.0.0.1 (made with the `openssl` CLI),
/// with its key; the files are removed when dropped.
pub struct TestCert {
    /// The PEM certificate (also the root to trust).
    pub cert: PathBuf,
    /// The PEM private key.
    pub key: PathBuf,
    dir: PathBuf,
}

impl TestCert {
    /// Generates a fresh one.
    pub fn localhost() -> Self {
        let dir = std::env::temp_dir().join(unique("assent-cert"));
        std::fs::create_dir_all(&dir).expect("cannot create the certificate directory");
        let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
        let status = Command::new("openssl")
            .args([
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            ])
            .args(["-subj", "/CN=localhost"])
            .args(["-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"])
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&cert)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("openssl is not installed: scripts/test installs it");
        assert!(status.success(), "openssl could not make a certificate");
        Self { cert, key, dir }
    }
}

impl Drop for TestCert {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A real SMTP server (Debian's `python3-aiosmtpd`) on a free port, keeping every message
/// it accepts in a maildir; stopped when dropped.
pub struct SmtpServer {
    port: u16,
    dir: PathBuf,
    child: Child,
}

impl SmtpServer {
    /// Plain SMTP, no TLS.
    pub fn start() -> Self {
        Self::launch(&[])
    }

    /// SMTP that requires STARTTLS with the given certificate.
    pub fn start_tls(cert: &Path, key: &Path) -> Self {
        Self::launch(&[("--tlscert", cert), ("--tlskey", key)])
    }

    /// SMTPS: TLS from the first byte, with the given certificate.
    pub fn start_smtps(cert: &Path, key: &Path) -> Self {
        Self::launch(&[("--smtpscert", cert), ("--smtpskey", key)])
    }

    fn launch(tls: &[(&str, &Path)]) -> Self {
        let dir = std::env::temp_dir().join(unique("assent-smtp"));
        std::fs::create_dir_all(&dir).expect("cannot create the SMTP directory");
        let port = free_port();
        let mut command = Command::new("/usr/bin/python3");
        command
            .args(["-m", "aiosmtpd", "-n", "-l", &format!("127.0.0.1:{port}")])
            .args(["-c", "aiosmtpd.handlers.Mailbox"]);
        for (flag, path) in tls {
            command.arg(flag).arg(path);
        }
        // The handler creates the maildir (not its parent); it must not exist beforehand.
        let child = command
            .arg("--")
            .arg(dir.join("maildir"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 is not installed: scripts/test installs python3-aiosmtpd");
        let mut server = Self { port, dir, child };
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = server.child.try_wait() {
                panic!("aiosmtpd exited ({status}): scripts/test installs python3-aiosmtpd");
            }
            assert!(
                Instant::now() < deadline,
                "aiosmtpd did not start on {port}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        server
    }

    /// The port it listens on (127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The raw RFC 5322 messages received so far, oldest first.
    pub fn messages(&self) -> Vec<String> {
        let Ok(entries) = std::fs::read_dir(self.dir.join("maildir/new")) else {
            return Vec::new();
        };
        let mut files: Vec<(std::time::SystemTime, PathBuf)> = entries
            .filter_map(Result::ok)
            .filter_map(|entry| Some((entry.metadata().ok()?.modified().ok()?, entry.path())))
            .collect();
        files.sort();
        files
            .into_iter()
            .filter_map(|(_, path)| std::fs::read_to_string(path).ok())
            .collect()
    }

    /// The messages, once at least `count` have arrived (panics after `timeout`).
    pub async fn wait_for_messages(&self, count: usize, timeout: Duration) -> Vec<String> {
        let deadline = Instant::now() + timeout;
        loop {
            let messages = self.messages();
            if messages.len() >= count {
                return messages;
            }
            assert!(
                Instant::now() < deadline,
                "{count} message(s) expected, {} arrived",
                messages.len()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A header of a raw RFC 5322 message (first occurrence, unfolded), by case-insensitive name.
pub fn mail_header(message: &str, name: &str) -> Option<String> {
    let head = message
        .split("\n\n")
        .next()
        .unwrap_or_default()
        .replace("\r\n", "\n");
    let unfolded = head.replace("\n ", " ").replace("\n\t", " ");
    unfolded.lines().find_map(|line| {
        let (key, value) = line.split_once(':')?;
        key.eq_ignore_ascii_case(name)
            .then(|| value.trim().to_owned())
    })
}

/// The body of a raw RFC 5322 message (after the blank line), with `\n` line ends.
pub fn mail_body(message: &str) -> String {
    let message = message.replace("\r\n", "\n");
    message
        .split_once("\n\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or_default()
}

/// One request an [`HttpSink`] received.
#[derive(Clone, Debug)]
pub struct SinkRequest {
    /// `POST`, `GET`...
    pub method: String,
    /// The path, with the query string if any.
    pub path: String,
    /// The headers, names in lower case, in arrival order.
    pub headers: Vec<(String, String)>,
    /// The raw body.
    pub body: Vec<u8>,
}

impl SinkRequest {
    /// A header's value, by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(key, _)| *key == name)
            .map(|(_, value)| value.as_str())
    }

    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON (panics if it is not).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }

    /// The fields of an `application/x-www-form-urlencoded` body.
    pub fn form(&self) -> std::collections::BTreeMap<String, String> {
        form_fields(&self.text())
    }

    /// User and password of a Basic `Authorization` header.
    pub fn basic_auth(&self) -> Option<(String, String)> {
        use base64::Engine as _;
        let encoded = self.header("authorization")?.strip_prefix("Basic ")?;
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .ok()?;
        let (user, password) = String::from_utf8(decoded)
            .ok()?
            .split_once(':')
            .map(|(user, password)| (user.to_owned(), password.to_owned()))?;
        Some((user, password))
    }
}

/// The fields of a form-urlencoded string (a later duplicate wins).
pub fn form_fields(encoded: &str) -> std::collections::BTreeMap<String, String> {
    reqwest::Url::parse(&format!("http://form.invalid/?{encoded}"))
        .map(|url| url.query_pairs().into_owned().collect())
        .unwrap_or_default()
}

/// A real HTTP server on a free port standing in for a provider (SMS/voice, push
/// webhook): records every request, whatever its method and path, and answers with a
/// status and JSON body that can be changed while it runs.
pub struct HttpSink {
    address: String,
    requests: Arc<std::sync::Mutex<Vec<SinkRequest>>>,
    arrived: Arc<tokio::sync::Notify>,
    answer: Arc<std::sync::Mutex<(u16, serde_json::Value)>>,
    handle: actix_web::dev::ServerHandle,
}

impl HttpSink {
    /// Starts one that answers 200 `{}`.
    pub async fn start() -> Self {
        Self::answering(200, serde_json::json!({})).await
    }

    /// Starts one that answers every request with `status` and `body`.
    pub async fn answering(status: u16, body: serde_json::Value) -> Self {
        use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
        let requests = Arc::new(std::sync::Mutex::new(Vec::new()));
        let arrived = Arc::new(tokio::sync::Notify::new());
        let answer = Arc::new(std::sync::Mutex::new((status, body)));
        let listener = TcpListener::bind("127.0.0.1:0").expect("a free port");
        let address = format!("http://{}", listener.local_addr().expect("an address"));
        let (recorded, notify, answers) = (requests.clone(), arrived.clone(), answer.clone());
        let server = HttpServer::new(move || {
            let (recorded, notify, answers) = (recorded.clone(), notify.clone(), answers.clone());
            App::new().default_service(web::to(move |request: HttpRequest, body: web::Bytes| {
                let (recorded, notify, answers) =
                    (recorded.clone(), notify.clone(), answers.clone());
                async move {
                    let headers = request
                        .headers()
                        .iter()
                        .map(|(name, value)| {
                            let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
                            (name.as_str().to_owned(), value)
                        })
                        .collect();
                    recorded.lock().unwrap().push(SinkRequest {
                        method: request.method().to_string(),
                        path: request.uri().to_string(),
                        headers,
                        body: body.to_vec(),
                    });
                    notify.notify_waiters();
                    let (status, body) = answers.lock().unwrap().clone();
                    HttpResponse::build(
                        actix_web::http::StatusCode::from_u16(status).expect("a valid status code"),
                    )
                    .json(body)
                }
            }))
        })
        .workers(1)
        .listen(listener)
        .expect("the sink listens")
        .run();
        let handle = server.handle();
        tokio::spawn(server);
        Self {
            address,
            requests,
            arrived,
            answer,
            handle,
        }
    }

    /// `http://127.0.0.1:PORT` (no trailing slash).
    pub fn url(&self) -> String {
        self.address.clone()
    }

    /// Answers the next requests with `status` and `body`.
    pub fn respond_with(&self, status: u16, body: serde_json::Value) {
        *self.answer.lock().unwrap() = (status, body);
    }

    /// The requests received so far, oldest first.
    pub fn requests(&self) -> Vec<SinkRequest> {
        self.requests.lock().unwrap().clone()
    }

    /// The requests, once at least `count` have arrived (panics after 15 s).
    pub async fn wait_for(&self, count: usize) -> Vec<SinkRequest> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        loop {
            let arrived = self.arrived.notified();
            let requests = self.requests();
            if requests.len() >= count {
                return requests;
            }
            assert!(
                tokio::time::timeout_at(deadline, arrived).await.is_ok(),
                "{count} request(s) expected, {} arrived",
                requests.len()
            );
        }
    }
}

impl Drop for HttpSink {
    fn drop(&mut self) {
        drop(self.handle.stop(false));
    }
}
