//! `assent device`: a device simulator that acts as the native app — pairs with a key
//! pair kept in a local file, lists pending requests, and answers them with signed proofs.

use std::path::{Path, PathBuf};
use std::time::Duration;

use assent_core::clock::Clock;
use assent_core::device_key::{DeviceSigner, ProofClaims};
use assent_proto::device::{
    DecisionAccepted, DecisionRequest, PairRequest, Paired, PendingList, PendingRequest,
};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Why a simulator command failed.
#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    /// The state file could not be read or written.
    #[error("device file {path}: {reason}")]
    File {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// Key generation or signing failed.
    #[error("crypto: {0}")]
    Crypto(#[from] josekit::JoseError),
    /// The server could not be reached.
    #[error("http: {0}")]
    Http(#[from] reqwest::Error),
    /// The server refused the request.
    #[error("server answered {status}: {body}")]
    Refused {
        /// HTTP status.
        status: u16,
        /// The problem body.
        body: String,
    },
    /// The request to answer is not pending on this device.
    #[error("no pending request {0} on this device")]
    NotPending(String),
}

/// What the simulator keeps between runs: the pairing and the private key.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeviceState {
    /// The assent base URL.
    pub server: String,
    /// The device id the server assigned.
    pub device_id: String,
    /// The user paired with.
    pub user_id: String,
    /// The device's private JWK (keep this file private).
    pub private_jwk: Map<String, Value>,
    /// The seed of the app's own passcodes, given at pairing (keep this file private).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub totp_seed: Option<String>,
}

/// A paired device talking to a server.
pub struct Device {
    state: DeviceState,
    signer: DeviceSigner,
    http: reqwest::Client,
}

async fn checked(response: reqwest::Response) -> Result<reqwest::Response, DeviceError> {
    if response.status().is_success() {
        Ok(response)
    } else {
        Err(DeviceError::Refused {
            status: response.status().as_u16(),
            body: response.text().await.unwrap_or_default(),
        })
    }
}

fn client() -> Result<reqwest::Client, DeviceError> {
    Ok(reqwest::Client::builder()
        .timeout(Duration::from_secs(120))
        .build()?)
}

impl Device {
    /// Generates a key pair and pairs it with the user `pairing_key` was issued for.
    pub async fn pair(server: &str, pairing_key: &str, name: &str) -> Result<Self, DeviceError> {
        let (private_jwk, public_jwk) = DeviceSigner::generate_key()?;
        let (private_jwk, public_jwk): (Map<String, Value>, Map<String, Value>) =
            (private_jwk.into(), public_jwk.into());
        let http = client()?;
        let server = server.trim_end_matches('/').to_owned();
        let request = PairRequest {
            pairing_key: pairing_key.to_owned(),
            public_jwk,
            name: name.to_owned(),
            os: "Android".to_owned(),
            os_version: "15".to_owned(),
            model: "assent simulator".to_owned(),
        };
        let response = http
            .post(format!("{server}/device/v1/pairings"))
            .json(&request)
            .send()
            .await?;
        let paired: Paired = checked(response).await?.json().await?;
        let signer = DeviceSigner::new(&paired.device_id, private_jwk.clone())?;
        Ok(Self {
            state: DeviceState {
                server,
                device_id: paired.device_id,
                user_id: paired.user_id,
                private_jwk,
                totp_seed: paired.totp_seed,
            },
            signer,
            http,
        })
    }

    /// A key pair for a one-time device (not paired): the state to keep, with no device id
    /// yet, and the public JWK to give the federation server.
    pub fn keygen(server: &str) -> Result<(Self, Map<String, Value>), DeviceError> {
        let (private_jwk, public_jwk) = DeviceSigner::generate_key()?;
        let (private_jwk, public_jwk): (Map<String, Value>, Map<String, Value>) =
            (private_jwk.into(), public_jwk.into());
        let device = Self {
            signer: DeviceSigner::new("", private_jwk.clone())?,
            state: DeviceState {
                server: server.trim_end_matches('/').to_owned(),
                device_id: String::new(),
                user_id: String::new(),
                private_jwk,
                totp_seed: None,
            },
            http: client()?,
        };
        Ok((device, public_jwk))
    }

    /// Takes the id the server gave a one-time device (`oneTimeDeviceId`).
    pub fn adopt(mut self, device_id: &str) -> Result<Self, DeviceError> {
        self.signer = DeviceSigner::new(device_id, self.state.private_jwk.clone())?;
        self.state.device_id = device_id.to_owned();
        Ok(self)
    }

    /// Loads a paired device from its state file.
    pub fn load(path: &Path) -> Result<Self, DeviceError> {
        let file_error = |reason: String| DeviceError::File {
            path: path.to_owned(),
            reason,
        };
        let text = std::fs::read_to_string(path).map_err(|e| file_error(e.to_string()))?;
        let state: DeviceState =
            serde_json::from_str(&text).map_err(|e| file_error(e.to_string()))?;
        let signer = DeviceSigner::new(&state.device_id, state.private_jwk.clone())?;
        Ok(Self {
            state,
            signer,
            http: client()?,
        })
    }

    /// Writes the state file, readable by its owner only.
    pub fn save(&self, path: &Path) -> Result<(), DeviceError> {
        let file_error = |reason: String| DeviceError::File {
            path: path.to_owned(),
            reason,
        };
        let text =
            serde_json::to_string_pretty(&self.state).map_err(|e| file_error(e.to_string()))?;
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        // The private key never sits on disk with wider permissions, not even briefly.
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(path).map_err(|e| file_error(e.to_string()))?;
        std::io::Write::write_all(&mut file, text.as_bytes())
            .map_err(|e| file_error(e.to_string()))?;
        Ok(())
    }

    /// The device id.
    pub fn id(&self) -> &str {
        &self.state.device_id
    }

    /// The user it is paired with.
    pub fn user_id(&self) -> &str {
        &self.state.user_id
    }

    /// Its signing key.
    pub fn signer(&self) -> &DeviceSigner {
        &self.signer
    }

    /// The server it talks to.
    pub fn server(&self) -> &str {
        &self.state.server
    }

    fn authorization(&self) -> Result<String, DeviceError> {
        Ok(format!("Device {}", self.signer.token()?))
    }

    /// The requests waiting for this device, long-polling up to `wait` seconds.
    pub async fn pending(&self, wait: u64) -> Result<Vec<PendingRequest>, DeviceError> {
        let response = self
            .http
            .get(format!(
                "{}/device/v1/pending?wait={wait}",
                self.state.server
            ))
            .header("Authorization", self.authorization()?)
            .send()
            .await?;
        let list: PendingList = checked(response).await?.json().await?;
        Ok(list.requests)
    }

    /// Answers a pending request: signs the decision over what the request showed.
    pub async fn answer(
        &self,
        request: &PendingRequest,
        approve: bool,
    ) -> Result<DecisionAccepted, DeviceError> {
        self.answer_with_number(request, approve, None).await
    }

    /// Answers a pending request, with the number picked when it asks for number matching.
    pub async fn answer_with_number(
        &self,
        request: &PendingRequest,
        approve: bool,
        number: Option<u8>,
    ) -> Result<DecisionAccepted, DeviceError> {
        let decision = if approve { "approve" } else { "deny" };
        let proof = self.signer.proof(&ProofClaims {
            auth_id: request.auth_id.to_string(),
            decision: decision.to_owned(),
            params_hash: assent_core::params::digest(&request.dynamic_params),
            number,
        })?;
        let response = self
            .http
            .post(format!(
                "{}/device/v1/authentications/{}",
                self.state.server, request.auth_id
            ))
            .header("Authorization", self.authorization()?)
            .json(&DecisionRequest {
                decision: decision.to_owned(),
                proof,
            })
            .send()
            .await?;
        Ok(checked(response).await?.json().await?)
    }

    /// The `mobilePayload` answering a flow's `serverPayload` (device authorization).
    pub fn authorize(&self, server_payload: &str) -> Result<String, DeviceError> {
        use base64::Engine;
        let invalid = || DeviceError::Refused {
            status: 0,
            body: "not a server payload".to_owned(),
        };
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(server_payload.trim())
            .map_err(|_| invalid())?;
        let challenge: Value = serde_json::from_slice(&bytes).map_err(|_| invalid())?;
        let (Some(flow), Some(nonce)) = (challenge["flowId"].as_str(), challenge["nonce"].as_str())
        else {
            return Err(invalid());
        };
        Ok(self.signer.mobile_payload(flow, nonce)?)
    }

    /// Pairs this device with one more user (a shared device); returns its users.
    pub async fn join(&self, pairing_key: &str) -> Result<Vec<String>, DeviceError> {
        let response = self
            .http
            .post(format!("{}/device/v1/users", self.state.server))
            .header("Authorization", self.authorization()?)
            .json(&serde_json::json!({ "pairingKey": pairing_key }))
            .send()
            .await?;
        let body: Value = checked(response).await?.json().await?;
        Ok(body["users"]
            .as_array()
            .map(|users| {
                users
                    .iter()
                    .filter_map(|user| user.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default())
    }

    /// The devices of this device's user.
    pub async fn devices(&self) -> Result<Value, DeviceError> {
        let response = self
            .http
            .get(format!("{}/device/v1/devices", self.state.server))
            .header("Authorization", self.authorization()?)
            .send()
            .await?;
        Ok(checked(response).await?.json().await?)
    }

    /// Unpairs this device (from every user it serves).
    pub async fn unpair(&self) -> Result<(), DeviceError> {
        let response = self
            .http
            .delete(format!(
                "{}/device/v1/devices/{}",
                self.state.server, self.state.device_id
            ))
            .header("Authorization", self.authorization()?)
            .send()
            .await?;
        checked(response).await?;
        Ok(())
    }

    /// Scans a QR sign-on code (the token, or the whole URI the code encodes).
    pub async fn scan(&self, code: &str) -> Result<Value, DeviceError> {
        let token = qr_token(code);
        let response = self
            .http
            .post(format!("{}/device/v1/qr/{token}", self.state.server))
            .header("Authorization", self.authorization()?)
            .send()
            .await?;
        Ok(checked(response).await?.json().await?)
    }

    /// Picks the user to sign in as, after scanning with a shared device.
    pub async fn select(&self, code: &str, user: &str) -> Result<Value, DeviceError> {
        let token = qr_token(code);
        let response = self
            .http
            .post(format!("{}/device/v1/qr/{token}/select", self.state.server))
            .header("Authorization", self.authorization()?)
            .json(&serde_json::json!({ "userId": user }))
            .send()
            .await?;
        Ok(checked(response).await?.json().await?)
    }

    /// Answers the pending request `auth_id` (with the number picked, for number matching).
    pub async fn answer_id(
        &self,
        auth_id: &str,
        approve: bool,
        number: Option<u8>,
    ) -> Result<DecisionAccepted, DeviceError> {
        let pending = self.pending(0).await?;
        let request = pending
            .iter()
            .find(|request| request.auth_id.as_str() == auth_id)
            .ok_or_else(|| DeviceError::NotPending(auth_id.to_owned()))?;
        self.answer_with_number(request, approve, number).await
    }

    /// The app's current one-time passcode (from the seed given at pairing).
    pub fn current_otp(&self) -> Option<String> {
        let seed = self.state.totp_seed.as_deref()?;
        assent_core::otp::totp_now(seed, assent_core::clock::SystemClock.now_secs())
    }
}

/// Prints a pending request the way a phone would show it.
pub fn describe(request: &PendingRequest) -> String {
    let silent = if request.silent { " silent" } else { "" };
    let mut text = format!(
        "{}  [{}{silent}] {} — {} (for {})\n    {}",
        request.auth_id,
        request.kind,
        request.application.name,
        request.title,
        request.user_id,
        request.body
    );
    for (name, value) in &request.dynamic_params {
        text.push_str(&format!("\n    {name} = {value}"));
    }
    if let Some(ip) = &request.client_ip {
        text.push_str(&format!("\n    from {ip}"));
    }
    if !request.number_choices.is_empty() {
        let choices: Vec<String> = request.number_choices.iter().map(u8::to_string).collect();
        text.push_str(&format!(
            "\n    pick the number your browser shows: {}",
            choices.join(" / ")
        ));
    }
    if let Some(message) = &request.admin_message {
        text.push_str(&format!("\n    {message}"));
    }
    text
}

/// The token of a QR sign-on code, given the token or the URI that carries it.
fn qr_token(code: &str) -> &str {
    code.split_once("authentication_token=")
        .map_or(code, |(_, token)| token)
        .trim()
}
