//! The bench's view of assent's three callers: the federation server (Adapter API), the
//! browser (Authentication API, as PingFederate's widget calls it) and the relying party
//! (CIBA), plus the phones (the device SDK).

use std::collections::BTreeMap;

use assent_device_sdk::{Device, DeviceInfo};
use assent_proto::adapter::{Application, FlowCreated, FlowKind, StartFlowRequest, UserInput};
use assent_proto::authn::{AuthnState, StatusName};
use assent_proto::ciba::{Acknowledgement, TokenResponse};
use assent_proto::device::PairingKeyIssued;
use reqwest::StatusCode;

use crate::BenchError;

/// The demo federation server of `conf/assent.toml`.
const FEDERATION: (&str, &str) = ("demo-federation", "demo-federation-secret");
/// The demo admin token.
const ADMIN_TOKEN: &str = "demo-admin-token";
/// The demo poll-mode CIBA client.
const CIBA_CLIENT: (&str, &str) = ("demo-ciba-poll", "demo-ciba-secret");
/// The CIBA grant type.
const CIBA_GRANT: &str = "urn:openid:params:grant-type:ciba";

/// One HTTP client for everything a run does (connections are pooled per host).
#[derive(Clone)]
pub struct Caller {
    http: reqwest::Client,
    base: String,
}

/// A flow as a browser holds it: its id and the binding it echoes.
#[derive(Clone, Debug)]
pub struct BrowserFlow {
    /// The flow id.
    pub id: String,
    binding: Option<String>,
}

impl Caller {
    /// A caller of the assent at `base`.
    pub fn new(base: &str) -> Result<Self, BenchError> {
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(20_000)
            .build()?;
        Ok(Self {
            http,
            base: base.to_owned(),
        })
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A user with one paired phone: the user is created by an (abandoned) flow start,
    /// as a federation server would, then paired with an Admin API key.
    pub async fn user_with_phone(&self, user: &str) -> Result<Device, BenchError> {
        self.start_flow(user, FlowKind::Oob).await?;
        let response = self
            .http
            .post(self.url(&format!("/admin/v1/users/{user}/pairing-keys")))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await?;
        let issued: PairingKeyIssued = expect(response, StatusCode::CREATED).await?;
        let info = DeviceInfo {
            name: "bench phone".to_owned(),
            os: "Android".to_owned(),
            os_version: "15".to_owned(),
            model: "assent-bench".to_owned(),
        };
        Ok(Device::pair(&self.base, &issued.pairing_key, &info).await?)
    }

    /// `POST /adapter/v1/flows` as the federation server.
    pub async fn start_flow(&self, user: &str, kind: FlowKind) -> Result<BrowserFlow, BenchError> {
        let request = StartFlowRequest {
            kind,
            user: Some(UserInput {
                id: user.to_owned(),
                username: user.to_owned(),
                first_name: None,
                last_name: None,
                email: Some(Some(format!("{user}@example.com"))),
                phone: None,
                voice_number: None,
                language: None,
                groups: None,
                attributes: None,
            }),
            application: Application {
                name: "Bench Bank".to_owned(),
                id: None,
                icon_url: None,
            },
            client_ip: Some("203.0.113.7".to_owned()),
            client_device: None,
            dynamic_params: BTreeMap::new(),
            template_id: None,
            return_url: None,
            one_time_device: None,
        };
        let response = self
            .http
            .post(self.url("/adapter/v1/flows"))
            .basic_auth(FEDERATION.0, Some(FEDERATION.1))
            .json(&request)
            .send()
            .await?;
        let created: FlowCreated = expect(response, StatusCode::CREATED).await?;
        Ok(BrowserFlow {
            id: created.flow_id,
            binding: None,
        })
    }

    /// The browser's GET of the flow's state; the first one binds the flow to it.
    pub async fn state(&self, flow: &mut BrowserFlow) -> Result<AuthnState, BenchError> {
        let mut request = self
            .http
            .get(self.url(&format!("/pf-ws/authn/flows/{}", flow.id)));
        if let Some(binding) = &flow.binding {
            request = request.header("X-PF-Authn-API-State", binding);
        }
        let state: AuthnState = expect(request.send().await?, StatusCode::OK).await?;
        if flow.binding.is_none() {
            flow.binding.clone_from(&state.authn_api_state);
        }
        Ok(state)
    }

    /// Posts the action `action` (no parameters) as the widget does; `wait` long polls.
    pub async fn act(
        &self,
        flow: &BrowserFlow,
        action: &str,
        wait: Option<u64>,
    ) -> Result<AuthnState, BenchError> {
        let mut url = self.url(&format!("/pf-ws/authn/flows/{}", flow.id));
        if let Some(wait) = wait {
            url.push_str(&format!("?wait={wait}"));
        }
        let mut request = self
            .http
            .post(url)
            .header("X-XSRF-Header", "PingFederate")
            .header(
                "Content-Type",
                format!("application/vnd.pingidentity.{action}+json"),
            );
        if let Some(binding) = &flow.binding {
            request = request.header("X-PF-Authn-API-State", binding);
        }
        expect(request.send().await?, StatusCode::OK).await
    }

    /// Opens a flow as the browser does and brings it to the push: GET (binding), and
    /// `authenticate {}` when the flow waits for a browser first.
    pub async fn open_until_push(&self, flow: &mut BrowserFlow) -> Result<(), BenchError> {
        let state = self.state(flow).await?;
        let state = match state.status.name() {
            StatusName::PushConfirmationWaiting => state,
            // AUTHENTICATION_REQUIRED: nothing is sent before the browser is on the page.
            _ => self.act_with_body(flow, "authenticate", "{}").await?,
        };
        match state.status.name() {
            StatusName::PushConfirmationWaiting => Ok(()),
            other => Err(BenchError::Unexpected(format!(
                "flow at {other:?}, not waiting for a push"
            ))),
        }
    }

    async fn act_with_body(
        &self,
        flow: &BrowserFlow,
        action: &str,
        body: &str,
    ) -> Result<AuthnState, BenchError> {
        let mut request = self
            .http
            .post(self.url(&format!("/pf-ws/authn/flows/{}", flow.id)))
            .header("X-XSRF-Header", "PingFederate")
            .header(
                "Content-Type",
                format!("application/vnd.pingidentity.{action}+json"),
            )
            .body(body.to_owned());
        if let Some(binding) = &flow.binding {
            request = request.header("X-PF-Authn-API-State", binding);
        }
        expect(request.send().await?, StatusCode::OK).await
    }

    /// `GET /adapter/v1/flows/{id}/result`: the federation server picks the result up.
    pub async fn pick_up(&self, flow: &BrowserFlow) -> Result<(), BenchError> {
        let response = self
            .http
            .get(self.url(&format!("/adapter/v1/flows/{}/result", flow.id)))
            .basic_auth(FEDERATION.0, Some(FEDERATION.1))
            .send()
            .await?;
        let _: serde_json::Value = expect(response, StatusCode::OK).await?;
        Ok(())
    }

    /// The relying party's backchannel authentication request for `user`.
    pub async fn ciba_request(&self, user: &str) -> Result<String, BenchError> {
        let response = self
            .http
            .post(self.url("/as/bc-auth.ciba"))
            .basic_auth(CIBA_CLIENT.0, Some(CIBA_CLIENT.1))
            .form(&[
                ("scope", "openid profile offline_access"),
                ("login_hint", user),
                ("binding_message", "bench"),
            ])
            .send()
            .await?;
        let acknowledgement: Acknowledgement = expect(response, StatusCode::OK).await?;
        Ok(acknowledgement.auth_req_id)
    }

    /// The relying party's token request: `None` while the person has not answered.
    pub async fn ciba_token(&self, auth_req_id: &str) -> Result<Option<TokenResponse>, BenchError> {
        let response = self
            .http
            .post(self.url("/as/token.oauth2"))
            .basic_auth(CIBA_CLIENT.0, Some(CIBA_CLIENT.1))
            .form(&[("grant_type", CIBA_GRANT), ("auth_req_id", auth_req_id)])
            .send()
            .await?;
        if response.status() == StatusCode::BAD_REQUEST {
            // authorization_pending or slow_down: ask again after the interval.
            return Ok(None);
        }
        Ok(Some(expect(response, StatusCode::OK).await?))
    }
}

/// The answer's body as `T`, if the status is `want`.
async fn expect<T: serde::de::DeserializeOwned>(
    response: reqwest::Response,
    want: StatusCode,
) -> Result<T, BenchError> {
    let status = response.status();
    if status != want {
        let body = response.text().await.unwrap_or_default();
        return Err(BenchError::Unexpected(format!("{status}: {body}")));
    }
    Ok(response.json().await?)
}
