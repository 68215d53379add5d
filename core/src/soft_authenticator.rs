//! A software WebAuthn authenticator for the ceremonies' tests: a real P-256 key (made
//! and used by `openssl`), answers in the widget's encoding (padded standard base64).

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use openssl::bn::{BigNum, BigNumContext};
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::sign::Signer;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// Authenticator data flag: the user is present.
pub(crate) const PRESENT: u8 = 0x01;
/// Authenticator data flags: the user is present and verified.
pub(crate) const VERIFIED: u8 = 0x05;
/// Authenticator data flag: attested credential data follows.
const ATTESTED: u8 = 0x40;

/// The relying party id the tests' relying party has.
pub(crate) const RP_ID: &str = "example.com";

/// One credential on an authenticator.
pub(crate) struct SoftAuthenticator {
    key: PKey<Private>,
    /// The credential id it chose.
    pub credential_id: Vec<u8>,
    /// The signature counter it reports next.
    pub sign_count: u32,
}

impl SoftAuthenticator {
    /// A fresh P-256 credential with id `[9; 16]`.
    pub(crate) fn new() -> Self {
        let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap();
        let key = PKey::from_ec_key(EcKey::generate(&group).unwrap()).unwrap();
        Self {
            key,
            credential_id: vec![9; 16],
            sign_count: 0,
        }
    }

    /// A well-formed `none` attestation answering `options` (the creation options JSON
    /// string) from `origin`, with `flags` (user present, verified).
    pub(crate) fn attest(&self, options: &str, origin: &str, flags: u8) -> String {
        let options: Value = serde_json::from_str(options).unwrap();
        let challenge: Vec<u8> = serde_json::from_value(options["challenge"].clone()).unwrap();
        let client_data = client_data("webauthn.create", &challenge, origin);
        let mut auth_data = self.auth_data(flags | ATTESTED);
        auth_data.extend([0; 16]); // AAGUID
        let id_len = u16::try_from(self.credential_id.len()).unwrap();
        auth_data.extend(id_len.to_be_bytes());
        auth_data.extend(&self.credential_id);
        auth_data.extend(self.cose_key());
        let mut object = vec![0xa3, 0x63];
        object.extend(b"fmt\x64none\x67attStmt\xa0\x68authData");
        object.extend([0x59]);
        object.extend(u16::try_from(auth_data.len()).unwrap().to_be_bytes());
        object.extend(auth_data);
        self.credential(
            &client_data,
            json!({ "attestationObject": STANDARD.encode(&object) }),
        )
    }

    /// A signed assertion of `challenge` from `origin`, with `flags` and the current
    /// counter; `user_handle` as the widget sends it ("" for none).
    pub(crate) fn assert(
        &self,
        challenge: &[u8],
        origin: &str,
        flags: u8,
        user_handle: &[u8],
    ) -> String {
        let client_data = client_data("webauthn.get", challenge, origin);
        let auth_data = self.auth_data(flags);
        let mut signer = Signer::new(MessageDigest::sha256(), &self.key).unwrap();
        signer.update(&auth_data).unwrap();
        signer
            .update(&Sha256::digest(client_data.as_bytes()))
            .unwrap();
        let signature = signer.sign_to_vec().unwrap();
        self.credential(
            &client_data,
            json!({
                "authenticatorData": STANDARD.encode(&auth_data),
                "signature": STANDARD.encode(&signature),
                "userHandle": STANDARD.encode(user_handle),
            }),
        )
    }

    /// The public key credential the widget sends: `response` and the client data.
    fn credential(&self, client_data: &str, mut response: Value) -> String {
        response["clientDataJSON"] = Value::from(STANDARD.encode(client_data.as_bytes()));
        json!({
            "id": URL_SAFE_NO_PAD.encode(&self.credential_id),
            "rawId": STANDARD.encode(&self.credential_id),
            "type": "public-key",
            "response": response,
        })
        .to_string()
    }

    /// rpIdHash, flags and counter.
    fn auth_data(&self, flags: u8) -> Vec<u8> {
        let mut auth_data = Sha256::digest(RP_ID.as_bytes()).to_vec();
        auth_data.push(flags);
        auth_data.extend(self.sign_count.to_be_bytes());
        auth_data
    }

    /// The public key as COSE EC2 P-256 ES256 {1: 2, 3: -7, -1: 1, -2: x, -3: y}.
    fn cose_key(&self) -> Vec<u8> {
        let ec = self.key.ec_key().unwrap();
        let (mut x, mut y) = (BigNum::new().unwrap(), BigNum::new().unwrap());
        let mut context = BigNumContext::new().unwrap();
        ec.public_key()
            .affine_coordinates(ec.group(), &mut x, &mut y, &mut context)
            .unwrap();
        let mut cose = vec![0xa5, 0x01, 0x02, 0x03, 0x26, 0x20, 0x01, 0x21, 0x58, 0x20];
        cose.extend(x.to_vec_padded(32).unwrap());
        cose.extend([0x22, 0x58, 0x20]);
        cose.extend(y.to_vec_padded(32).unwrap());
        cose
    }
}

/// The client data the browser signs over.
fn client_data(kind: &str, challenge: &[u8], origin: &str) -> String {
    json!({
        "type": kind,
        "challenge": URL_SAFE_NO_PAD.encode(challenge),
        "origin": origin,
    })
    .to_string()
}
