//! A headless Chromium driven over W3C WebDriver: `chromedriver` on a free port, spoken to
//! in plain HTTP and JSON (reqwest), enough to load a page, run scripts in it and read
//! what it shows. Debian's `chromium` and `chromium-driver`, installed by scripts/test.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use actix_web::{App, HttpResponse, HttpServer, web};
use serde_json::{Value, json};

use crate::support::{free_port, repo_root};

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";

/// One browser session; the browser and its driver end when this is dropped.
pub struct Browser {
    driver: Child,
    port: u16,
    session: String,
    /// The browser's own process, to end it should its driver fail to.
    browser_pid: Option<u64>,
    http: reqwest::Client,
}

impl Browser {
    /// Starts `chromedriver` and a headless Chromium session.
    pub async fn start() -> Self {
        assert!(
            Path::new(CHROMEDRIVER).exists() && Path::new(CHROMIUM).exists(),
            "run ./scripts/test, which installs chromium and chromium-driver"
        );
        let port = free_port();
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .expect("an HTTP client");
        let mut browser = Self {
            driver,
            port,
            session: String::new(),
            browser_pid: None,
            http,
        };
        browser.wait_until_ready().await;
        let capabilities = json!({ "capabilities": { "alwaysMatch": {
            "browserName": "chrome",
            "pageLoadStrategy": "normal",
            "timeouts": { "pageLoad": 20_000, "script": 20_000 },
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                // Root in a container has no sandbox to offer; /dev/shm may be tiny.
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                         "--disable-dev-shm-usage", "--no-first-run",
                         "--disable-crash-reporter", "--window-size=1024,900"],
            },
        }}});
        let created = browser
            .command(reqwest::Method::POST, "/session", Some(capabilities))
            .await;
        browser.session = created["sessionId"]
            .as_str()
            .expect("a session id")
            .to_owned();
        browser.browser_pid = created["capabilities"]["goog:processID"].as_u64();
        browser
    }

    async fn wait_until_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(15);
        let status = format!("http://127.0.0.1:{}/status", self.port);
        while Instant::now() < deadline {
            if let Ok(response) = self.http.get(&status).send().await
                && let Ok(body) = response.json::<Value>().await
                && body["value"]["ready"] == true
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("chromedriver did not start on port {}", self.port);
    }

    /// One WebDriver command: its `value`, or the driver's error.
    async fn try_command(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, String> {
        let url = format!("http://127.0.0.1:{}{path}", self.port);
        let mut request = self.http.request(method, &url);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.map_err(|error| error.to_string())?;
        let status = response.status();
        let body: Value = response.json().await.map_err(|error| error.to_string())?;
        if status.is_success() {
            Ok(body["value"].clone())
        } else {
            Err(format!("WebDriver {path}: {status} {body}"))
        }
    }

    /// One WebDriver command; its `value`, or a panic with the driver's error.
    async fn command(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        self.try_command(method, path, body)
            .await
            .unwrap_or_else(|error| panic!("{error}"))
    }

    async fn session_command(&self, method: reqwest::Method, path: &str, body: Value) -> Value {
        let path = format!("/session/{}{path}", self.session);
        let body = (method != reqwest::Method::GET).then_some(body);
        self.command(method, &path, body).await
    }

    /// Loads `url` and waits for the page to load.
    pub async fn goto(&self, url: &str) {
        self.session_command(reqwest::Method::POST, "/url", json!({ "url": url }))
            .await;
    }

    /// The address of the page shown now.
    pub async fn current_url(&self) -> String {
        self.session_command(reqwest::Method::GET, "/url", Value::Null)
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// Runs `script` (a function body; `arguments` holds `args`) and returns its value.
    pub async fn run(&self, script: &str, args: Value) -> Value {
        let body = json!({ "script": script, "args": args });
        self.session_command(reqwest::Method::POST, "/execute/sync", body)
            .await
    }

    /// Runs `script`, which calls its last argument with the result (for promises).
    pub async fn run_async(&self, script: &str, args: Value) -> Value {
        let body = json!({ "script": script, "args": args });
        self.session_command(reqwest::Method::POST, "/execute/async", body)
            .await
    }

    /// Adds a virtual WebAuthn authenticator (the WebAuthn extension of WebDriver) and
    /// returns its id: `transport` `usb` for a security key, `internal` for a platform
    /// authenticator; it verifies the person when `verifies_user`.
    pub async fn add_virtual_authenticator(&self, transport: &str, verifies_user: bool) -> String {
        let options = json!({
            "protocol": "ctap2",
            "transport": transport,
            "hasResidentKey": true,
            "hasUserVerification": verifies_user,
            "isUserConsenting": true,
            "isUserVerified": verifies_user,
        });
        self.session_command(reqwest::Method::POST, "/webauthn/authenticator", options)
            .await
            .as_str()
            .expect("an authenticator id")
            .to_owned()
    }

    /// Removes a virtual authenticator (and the credentials it holds).
    pub async fn remove_virtual_authenticator(&self, authenticator: &str) {
        let path = format!("/webauthn/authenticator/{authenticator}");
        self.session_command(reqwest::Method::DELETE, &path, json!({}))
            .await;
    }

    /// The credentials a virtual authenticator holds: `credentialId`, `rpId`,
    /// `privateKey` (PKCS#8, base64url), `userHandle`, `signCount`,
    /// `isResidentCredential`.
    pub async fn virtual_credentials(&self, authenticator: &str) -> Vec<Value> {
        let path = format!("/webauthn/authenticator/{authenticator}/credentials");
        let listed = self
            .session_command(reqwest::Method::GET, &path, Value::Null)
            .await;
        listed.as_array().cloned().unwrap_or_default()
    }

    /// Puts `credential` (in the shape [`Self::virtual_credentials`] lists) into a
    /// virtual authenticator: a copy of a key, as a cloned authenticator would hold.
    pub async fn add_virtual_credential(&self, authenticator: &str, credential: Value) {
        let path = format!("/webauthn/authenticator/{authenticator}/credential");
        self.session_command(reqwest::Method::POST, &path, credential)
            .await;
    }

    /// A PNG of what the page shows now.
    pub async fn screenshot(&self) -> Vec<u8> {
        use base64::Engine;
        let encoded = self
            .session_command(reqwest::Method::GET, "/screenshot", Value::Null)
            .await;
        base64::engine::general_purpose::STANDARD
            .decode(encoded.as_str().unwrap_or_default())
            .expect("a base64 screenshot")
    }

    /// The text a person sees on the page now.
    pub async fn text(&self) -> String {
        self.run(
            "return document.body ? document.body.innerText : '';",
            json!([]),
        )
        .await
        .as_str()
        .unwrap_or_default()
        .to_owned()
    }

    /// Runs `script` until it returns something other than `null` or `false`, and returns
    /// that; after `timeout`, panics saying what was awaited and what the page showed.
    pub async fn wait_for(
        &self,
        what: &str,
        script: &str,
        args: Value,
        timeout: Duration,
    ) -> Value {
        let deadline = Instant::now() + timeout;
        let path = format!("/session/{}/execute/sync", self.session);
        let body = json!({ "script": script, "args": args });
        loop {
            // A script that meets the page mid-navigation fails: that is "not yet".
            let value = self
                .try_command(reqwest::Method::POST, &path, Some(body.clone()))
                .await
                .unwrap_or(Value::Null);
            if !value.is_null() && value != false {
                return value;
            }
            if Instant::now() >= deadline {
                panic!(
                    "waited {timeout:?} for {what}; the page at {} shows:\n{}",
                    self.current_url().await,
                    self.text().await
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until the page shows `text`.
    pub async fn wait_for_text(&self, text: &str, timeout: Duration) {
        let script = "return document.body && document.body.innerText.includes(arguments[0]);";
        self.wait_for(
            &format!("the text {text:?}"),
            script,
            json!([text]),
            timeout,
        )
        .await;
    }

    /// Waits until the browser is at `url`.
    pub async fn wait_for_url(&self, url: &str, timeout: Duration) {
        let script = "return location.href === arguments[0];";
        self.wait_for(&format!("the page {url}"), script, json!([url]), timeout)
            .await;
    }

    /// Types `keys` into the element `selector` picks, as a keyboard does (WebDriver's
    /// Element Send Keys: focus, then each key); `\u{E007}` is Enter.
    pub async fn type_into(&self, selector: &str, keys: &str) {
        let found = self
            .session_command(
                reqwest::Method::POST,
                "/element",
                json!({ "using": "css selector", "value": selector }),
            )
            .await;
        let element = found["element-6066-11e4-a52e-4f735466cecf"]
            .as_str()
            .unwrap_or_else(|| panic!("no element {selector}: {found}"))
            .to_owned();
        self.session_command(
            reqwest::Method::POST,
            &format!("/element/{element}/value"),
            json!({ "text": keys }),
        )
        .await;
    }

    /// Ends the session the way the driver expects (`DELETE /session/{id}`), with plain
    /// blocking I/O since it runs in `drop`.
    fn end_session(&self) -> bool {
        let Ok(mut stream) = TcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
        let request = format!(
            "DELETE /session/{} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Length: 0\r\n\
             Connection: close\r\n\r\n",
            self.session, self.port
        );
        if stream.write_all(request.as_bytes()).is_err() {
            return false;
        }
        // The status line is enough (the driver may keep the connection open).
        let mut reply = [0u8; 12];
        stream.read_exact(&mut reply).is_ok() && &reply == b"HTTP/1.1 200"
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // The driver quits the browser when the session ends; ending the driver alone
        // would leave the browser running.
        if !self.session.is_empty()
            && !self.end_session()
            && let Some(pid) = self.browser_pid
        {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// The federation server's return page, on an origin of its own.
pub struct ReturnPage {
    /// Its URL, the flows' `returnUrl`.
    pub url: String,
    /// Stops it.
    pub handle: actix_web::dev::ServerHandle,
}

impl ReturnPage {
    /// Starts it on a free port.
    pub async fn start() -> Self {
        let server = HttpServer::new(|| {
            App::new().route(
                "/back",
                web::get().to(|| async {
                    HttpResponse::Ok()
                        .content_type("text/html; charset=utf-8")
                        .body("<!doctype html><title>Back</title><p>Back at the federation server</p>")
                }),
            )
        })
        .workers(1)
        .bind(("127.0.0.1", 0))
        .expect("a port for the return page");
        let url = format!("http://{}/back", server.addrs()[0]);
        let server = server.run();
        let handle = server.handle();
        tokio::spawn(server);
        Self { url, handle }
    }
}

/// axe-core's WCAG 2.1 A and AA rules, run in the page shown now; panics listing any
/// violation. Then keeps a screenshot named `name`.
pub async fn check_page(browser: &Browser, name: &str) {
    let axe =
        std::fs::read_to_string(repo_root().join("tests/interop/node_modules/axe-core/axe.min.js"))
            .expect("run ./scripts/test, which installs axe-core (npm ci in tests/interop)");
    browser
        .run(&format!("{axe}\nreturn true;"), json!([]))
        .await;
    let script = "const done = arguments[arguments.length - 1];
        axe.run(document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] } })
            .then(results => done(JSON.stringify({ violations: results.violations, passes: results.passes.length })),
                  error => done(JSON.stringify({ error: String(error) })));";
    let report = browser.run_async(script, json!([])).await;
    let report: Value = serde_json::from_str(report.as_str().unwrap_or_default()).unwrap();
    assert!(
        report["error"].is_null(),
        "axe-core failed on {name}: {report}"
    );
    let violations = report["violations"].as_array().cloned().unwrap_or_default();
    assert!(
        violations.is_empty(),
        "axe-core violations on {name}: {:#}",
        Value::Array(violations)
    );
    assert!(
        report["passes"].as_u64().unwrap_or_default() > 0,
        "axe-core checked {name}"
    );
    let directory = repo_root().join("target/screenshots");
    std::fs::create_dir_all(&directory).unwrap();
    std::fs::write(
        directory.join(format!("{name}.png")),
        browser.screenshot().await,
    )
    .unwrap();
}

/// Clicks the button `selector` picks, as a person would.
pub async fn click(browser: &Browser, selector: &str) {
    browser
        .run(
            "const button = document.querySelector(arguments[0]); button.focus(); button.click(); return true;",
            json!([selector]),
        )
        .await;
}
