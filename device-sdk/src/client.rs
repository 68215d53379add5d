//! A typed async client of the Device API: [`Client`] pairs a key, [`Device`] is a paired
//! (or one-time) device that lists and answers its requests, joins users, scans QR codes.

use std::path::Path;
use std::time::Duration;

use assent_proto::device::{
    Decision, DecisionAccepted, DecisionRequest, DeviceInfo, DeviceJoined, DeviceList, JoinRequest,
    PairRequest, Paired, PairedDevice, PendingList, PendingRequest, QrOutcome, QrSelectRequest,
};
use assent_proto::mobile::ServerPayload;
use reqwest::{RequestBuilder, Response, Url};
use serde::de::DeserializeOwned;

use crate::{DeviceKey, DeviceRecord, DeviceSigner, SdkError};

/// How long one HTTP exchange may take: longer than the longest long poll a server
/// grants, so a wait ends at the server, not here.
const HTTP_TIMEOUT: Duration = Duration::from_secs(120);

/// Where the Device API is, and the HTTP client that talks to it.
#[derive(Clone, Debug)]
pub struct Client {
    server: String,
    base: Url,
    http: reqwest::Client,
}

/// The body of a successful answer, or the refusal with its problem body.
async fn checked(response: Response) -> Result<Response, SdkError> {
    if response.status().is_success() {
        Ok(response)
    } else {
        Err(SdkError::Refused {
            status: response.status().as_u16(),
            body: response.text().await.unwrap_or_default(),
        })
    }
}

async fn json<T: DeserializeOwned>(request: RequestBuilder) -> Result<T, SdkError> {
    Ok(checked(request.send().await?).await?.json().await?)
}

/// The token of a QR sign-on code, given the token or the URI that carries it.
pub fn qr_token(code: &str) -> &str {
    code.split_once("authentication_token=")
        .map_or(code, |(_, token)| token)
        .trim()
}

impl Client {
    /// A client of the assent at `server` (its base URL).
    pub fn new(server: &str) -> Result<Self, SdkError> {
        let http = reqwest::Client::builder().timeout(HTTP_TIMEOUT).build()?;
        Self::with_http(server, http)
    }

    /// A client that sends through `http` (the app's own settings: proxy, roots, timeouts).
    pub fn with_http(server: &str, http: reqwest::Client) -> Result<Self, SdkError> {
        let server = server.trim_end_matches('/').to_owned();
        let unusable = |reason: &str| SdkError::ServerUrl {
            url: server.clone(),
            reason: reason.to_owned(),
        };
        let base = Url::parse(&server).map_err(|error| unusable(&error.to_string()))?;
        if !matches!(base.scheme(), "http" | "https") || base.cannot_be_a_base() {
            return Err(unusable("not an http or https base URL"));
        }
        Ok(Self { server, base, http })
    }

    /// The server's base URL.
    pub fn server(&self) -> &str {
        &self.server
    }

    /// The URL of a Device API path; each segment is percent-encoded, so a value from a
    /// QR code or a server cannot reach another path.
    pub(crate) fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        url
    }

    /// Pairs `key` with the user `pairing_key` was issued for.
    pub async fn pair(
        &self,
        key: DeviceKey,
        pairing_key: &str,
        info: &DeviceInfo,
    ) -> Result<Device, SdkError> {
        let request = PairRequest {
            pairing_key: pairing_key.to_owned(),
            public_jwk: key.public_jwk().clone(),
            name: info.name.clone(),
            os: info.os.clone(),
            os_version: info.os_version.clone(),
            model: info.model.clone(),
        };
        let paired: Paired = json(
            self.http
                .post(self.url(&["device", "v1", "pairings"]))
                .json(&request),
        )
        .await?;
        Ok(Device {
            client: self.clone(),
            signer: DeviceSigner::new(paired.device_id, key),
            user_id: paired.user_id,
            totp_seed: paired.totp_seed,
        })
    }

    /// Pairs `key` with the pairing key a `serverPayload` carries (automatic pairing of an
    /// app that was not trusted yet).
    pub async fn pair_with_server_payload(
        &self,
        key: DeviceKey,
        payload: &ServerPayload,
        info: &DeviceInfo,
    ) -> Result<Device, SdkError> {
        let pairing_key = payload
            .pairing_key
            .as_deref()
            .ok_or(SdkError::NoPairingKey)?;
        self.pair(key, pairing_key, info).await
    }

    /// A device this server already knows: one paired before, or a one-time device a flow
    /// named (`oneTimeDeviceId`; it serves no user, so `user_id` is empty).
    pub fn device(&self, device_id: &str, user_id: &str, key: DeviceKey) -> Device {
        Device {
            client: self.clone(),
            signer: DeviceSigner::new(device_id, key),
            user_id: user_id.to_owned(),
            totp_seed: None,
        }
    }
}

/// A device the server knows, signing each call with its key.
#[derive(Clone, Debug)]
pub struct Device {
    client: Client,
    signer: DeviceSigner,
    user_id: String,
    totp_seed: Option<String>,
}

impl Device {
    /// Makes a key pair and pairs it with the user `pairing_key` was issued for.
    pub async fn pair(
        server: &str,
        pairing_key: &str,
        info: &DeviceInfo,
    ) -> Result<Self, SdkError> {
        Client::new(server)?
            .pair(DeviceKey::generate()?, pairing_key, info)
            .await
    }

    /// The device a record describes.
    pub fn from_record(record: DeviceRecord) -> Result<Self, SdkError> {
        let key = DeviceKey::from_private_jwk(record.private_jwk)?;
        Ok(Self {
            client: Client::new(&record.server)?,
            signer: DeviceSigner::new(record.device_id, key),
            user_id: record.user_id,
            totp_seed: record.totp_seed,
        })
    }

    /// What to keep to be this device again (it holds the private key).
    pub fn record(&self) -> DeviceRecord {
        DeviceRecord {
            server: self.client.server().to_owned(),
            device_id: self.id().to_owned(),
            user_id: self.user_id.clone(),
            private_jwk: self.signer.key().private_jwk(),
            totp_seed: self.totp_seed.clone(),
        }
    }

    /// Loads a device from its record file.
    pub fn load(path: &Path) -> Result<Self, SdkError> {
        Self::from_record(DeviceRecord::load(path)?)
    }

    /// Writes its record to a file only its owner may read.
    pub fn save(&self, path: &Path) -> Result<(), SdkError> {
        self.record().save(path)
    }

    /// The device id.
    pub fn id(&self) -> &str {
        self.signer.device_id()
    }

    /// The user it was paired with (empty for a one-time device).
    pub fn user_id(&self) -> &str {
        &self.user_id
    }

    /// The seed of the app's own passcodes (base32, RFC 6238, SHA-1, 6 digits, 30 s),
    /// given at pairing.
    pub fn totp_seed(&self) -> Option<&str> {
        self.totp_seed.as_deref()
    }

    /// The client it talks through.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// What signs for it.
    pub fn signer(&self) -> &DeviceSigner {
        &self.signer
    }

    /// A fresh `Authorization` header value (`Device <jwt>`).
    pub fn authorization(&self) -> Result<String, SdkError> {
        Ok(format!("Device {}", self.signer.token()?))
    }

    fn get(&self, segments: &[&str]) -> Result<RequestBuilder, SdkError> {
        let url = self.client.url(segments);
        Ok(self
            .client
            .http
            .get(url)
            .header("Authorization", self.authorization()?))
    }

    fn post(&self, segments: &[&str]) -> Result<RequestBuilder, SdkError> {
        let url = self.client.url(segments);
        Ok(self
            .client
            .http
            .post(url)
            .header("Authorization", self.authorization()?))
    }

    /// The requests waiting for this device, long-polling up to `wait` seconds (the server
    /// caps it) for one to arrive.
    pub async fn pending(&self, wait: u64) -> Result<Vec<PendingRequest>, SdkError> {
        let request = self
            .get(&["device", "v1", "pending"])?
            .query(&[("wait", wait)]);
        let list: PendingList = json(request).await?;
        Ok(list.requests)
    }

    /// Answers a request with a proof over what it showed (and the number picked, when it
    /// asks for number matching).
    pub async fn answer(
        &self,
        request: &PendingRequest,
        decision: Decision,
        number: Option<u8>,
    ) -> Result<DecisionAccepted, SdkError> {
        let body = DecisionRequest {
            decision: decision.as_str().to_owned(),
            proof: self.signer.decision_proof(request, decision, number)?,
        };
        let url = ["device", "v1", "authentications", &request.auth_id];
        json(self.post(&url)?.json(&body)).await
    }

    /// Approves a request that asks for no number.
    pub async fn approve(&self, request: &PendingRequest) -> Result<DecisionAccepted, SdkError> {
        self.answer(request, Decision::Approve, None).await
    }

    /// Denies a request.
    pub async fn deny(&self, request: &PendingRequest) -> Result<DecisionAccepted, SdkError> {
        self.answer(request, Decision::Deny, None).await
    }

    /// Answers the pending request `auth_id`, looked up first to sign what it shows.
    pub async fn answer_by_id(
        &self,
        auth_id: &str,
        decision: Decision,
        number: Option<u8>,
    ) -> Result<DecisionAccepted, SdkError> {
        let pending = self.pending(0).await?;
        let request = pending
            .iter()
            .find(|request| request.auth_id == auth_id)
            .ok_or_else(|| SdkError::NotPending(auth_id.to_owned()))?;
        self.answer(request, decision, number).await
    }

    /// Pairs this device with one more user (a shared device).
    pub async fn join(&self, pairing_key: &str) -> Result<DeviceJoined, SdkError> {
        let body = JoinRequest {
            pairing_key: pairing_key.to_owned(),
        };
        json(self.post(&["device", "v1", "users"])?.json(&body)).await
    }

    /// The devices of this device's user, or of `user` among those a shared device serves.
    pub async fn devices(&self, user: Option<&str>) -> Result<Vec<PairedDevice>, SdkError> {
        let mut request = self.get(&["device", "v1", "devices"])?;
        if let Some(user) = user {
            request = request.query(&[("userId", user)]);
        }
        let list: DeviceList = json(request).await?;
        Ok(list.devices)
    }

    /// Unpairs this device from every user it serves.
    pub async fn unpair(&self) -> Result<(), SdkError> {
        let url = self.client.url(&["device", "v1", "devices", self.id()]);
        let request = self
            .client
            .http
            .delete(url)
            .header("Authorization", self.authorization()?);
        checked(request.send().await?).await?;
        Ok(())
    }

    /// Scans a QR sign-on code: the token, the whole URI the code encodes, or the short
    /// code the page prints for a person to type when the camera cannot scan (any case,
    /// with or without its dash; the server reads O, I and L as 0, 1 and 1).
    pub async fn scan(&self, code: &str) -> Result<QrOutcome, SdkError> {
        json(self.post(&["device", "v1", "qr", qr_token(code)])?).await
    }

    /// After a scan with a shared device, picks the user who signs in.
    pub async fn select(&self, code: &str, user: &str) -> Result<QrOutcome, SdkError> {
        let body = QrSelectRequest {
            user_id: user.to_owned(),
        };
        let url = ["device", "v1", "qr", qr_token(code), "select"];
        json(self.post(&url)?.json(&body)).await
    }

    /// The `mobilePayload` answering a flow's `serverPayload` (device authorization).
    pub fn authorize(&self, server_payload: &str) -> Result<String, SdkError> {
        let payload = crate::decode_server_payload(server_payload)?;
        self.signer.answer_server_payload(&payload)
    }
}
