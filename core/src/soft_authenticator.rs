//! A software WebAuthn authenticator for the ceremonies' tests: a real P-256 key (made
//! and used by `openssl`), answers in the widget's encoding (padded standard base64);
//! `none` attestations, or `packed` ones by a model whose maker's root issued its
//! attestation certificate.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use openssl::asn1::{Asn1Integer, Asn1Object, Asn1OctetString, Asn1Time};
use openssl::bn::{BigNum, BigNumContext};
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::sign::Signer;
use openssl::x509::extension::{BasicConstraints, KeyUsage};
use openssl::x509::{X509, X509Builder, X509Extension, X509Name, X509NameBuilder};
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
        Self {
            key: p256_key(),
            credential_id: vec![9; 16],
            sign_count: 0,
        }
    }

    /// A well-formed `none` attestation answering `options` (the creation options JSON
    /// string) from `origin`, with `flags` (user present, verified).
    pub(crate) fn attest(&self, options: &str, origin: &str, flags: u8) -> String {
        self.attest_as(None, options, origin, flags)
    }

    /// A `packed` attestation by `model`: its AAGUID in the authenticator data, signed
    /// with its attestation key, its certificate in `x5c`.
    pub(crate) fn attest_packed(
        &self,
        model: &Model,
        options: &str,
        origin: &str,
        flags: u8,
    ) -> String {
        self.attest_as(Some(model), options, origin, flags)
    }

    fn attest_as(&self, model: Option<&Model>, options: &str, origin: &str, flags: u8) -> String {
        let options: Value = serde_json::from_str(options).unwrap();
        let challenge: Vec<u8> = serde_json::from_value(options["challenge"].clone()).unwrap();
        let client_data = client_data("webauthn.create", &challenge, origin);
        let mut auth_data = self.auth_data(flags | ATTESTED);
        auth_data.extend(model.map_or([0; 16], |model| model.aaguid));
        let id_len = u16::try_from(self.credential_id.len()).unwrap();
        auth_data.extend(id_len.to_be_bytes());
        auth_data.extend(&self.credential_id);
        auth_data.extend(self.cose_key());
        let (format, statement) = match model {
            None => ("none", vec![0xa0]),
            Some(model) => ("packed", model.statement(&auth_data, &client_data)),
        };
        let mut object = vec![0xa3];
        object.extend(cbor_text("fmt"));
        object.extend(cbor_text(format));
        object.extend(cbor_text("attStmt"));
        object.extend(statement);
        object.extend(cbor_text("authData"));
        object.extend(cbor_bytes(&auth_data));
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
        let signature = sign(&self.key, &auth_data, &client_data);
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

/// What an authenticator signs: its data, then the client data's hash (DER ECDSA).
fn sign(key: &PKey<Private>, auth_data: &[u8], client_data: &str) -> Vec<u8> {
    let mut signer = Signer::new(MessageDigest::sha256(), key).unwrap();
    signer.update(auth_data).unwrap();
    signer
        .update(&Sha256::digest(client_data.as_bytes()))
        .unwrap();
    signer.sign_to_vec().unwrap()
}

fn p256_key() -> PKey<Private> {
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap();
    PKey::from_ec_key(EcKey::generate(&group).unwrap()).unwrap()
}

/// A CBOR item's head: its major type and its length.
fn cbor_head(major: u8, length: usize) -> Vec<u8> {
    let major = major << 5;
    match u8::try_from(length) {
        Ok(short) if short < 24 => vec![major | short],
        Ok(byte) => vec![major | 24, byte],
        Err(_) => {
            let mut head = vec![major | 25];
            head.extend(u16::try_from(length).unwrap().to_be_bytes());
            head
        }
    }
}

fn cbor_text(text: &str) -> Vec<u8> {
    let mut item = cbor_head(3, text.len());
    item.extend(text.as_bytes());
    item
}

fn cbor_bytes(bytes: &[u8]) -> Vec<u8> {
    let mut item = cbor_head(2, bytes.len());
    item.extend(bytes);
    item
}

/// The FIDO extension naming an attestation certificate's model (id-fido-gen-ce-aaguid).
const AAGUID_OID: &str = "1.3.6.1.4.1.45724.1.1.4";

/// An authenticator maker: its attestation root (a self-signed P-256 CA), which issues
/// its models' attestation certificates.
pub(crate) struct Maker {
    name: String,
    key: PKey<Private>,
    root: X509,
}

impl Maker {
    /// A maker named `name`. Two makers of one name have roots of the same subject but
    /// not the same key: one is an impostor of the other.
    pub(crate) fn new(name: &str) -> Self {
        let key = p256_key();
        let subject = name_of(&[
            (Nid::COUNTRYNAME, "SE"),
            (Nid::ORGANIZATIONNAME, name),
            (Nid::COMMONNAME, &format!("{name} Attestation Root")),
        ]);
        let mut root = certificate(&subject, &subject, &key, 1);
        let constraints = BasicConstraints::new().critical().ca().build().unwrap();
        root.append_extension(constraints).unwrap();
        let usage = KeyUsage::new()
            .critical()
            .key_cert_sign()
            .crl_sign()
            .build()
            .unwrap();
        root.append_extension(usage).unwrap();
        root.sign(&key, MessageDigest::sha256()).unwrap();
        Self {
            name: name.to_owned(),
            key,
            root: root.build(),
        }
    }

    /// Its root certificate, as an operator's PEM file holds it.
    pub(crate) fn root_pem(&self) -> Vec<u8> {
        self.root.to_pem().unwrap()
    }

    /// Its model `aaguid` (hyphenated hex): an attestation key and the certificate the
    /// root issued for it, as FIDO's `packed` format requires (version 3; subject C, O,
    /// OU "Authenticator Attestation", CN; not a CA; the AAGUID extension, not critical).
    pub(crate) fn model(&self, aaguid: &str) -> Model {
        let hex: Vec<u8> = aaguid.bytes().filter(|byte| *byte != b'-').collect();
        let aaguid: [u8; 16] = hex
            .chunks(2)
            .map(|pair| u8::from_str_radix(std::str::from_utf8(pair).unwrap(), 16).unwrap())
            .collect::<Vec<_>>()
            .try_into()
            .unwrap();
        let key = p256_key();
        let subject = name_of(&[
            (Nid::COUNTRYNAME, "SE"),
            (Nid::ORGANIZATIONNAME, &self.name),
            (Nid::ORGANIZATIONALUNITNAME, "Authenticator Attestation"),
            (Nid::COMMONNAME, &format!("{} Key Attestation", self.name)),
        ]);
        let mut leaf = certificate(&subject, self.root.subject_name(), &key, 2);
        leaf.append_extension(BasicConstraints::new().build().unwrap())
            .unwrap();
        let mut value = vec![0x04, 16]; // OCTET STRING of 16 bytes
        value.extend(aaguid);
        let extension = X509Extension::new_from_der(
            &Asn1Object::from_str(AAGUID_OID).unwrap(),
            false,
            &Asn1OctetString::new_from_bytes(&value).unwrap(),
        )
        .unwrap();
        leaf.append_extension(extension).unwrap();
        leaf.sign(&self.key, MessageDigest::sha256()).unwrap();
        Model {
            key,
            certificate: leaf.build().to_der().unwrap(),
            aaguid,
        }
    }
}

/// An authenticator model: its attestation key and certificate, and its AAGUID.
pub(crate) struct Model {
    key: PKey<Private>,
    certificate: Vec<u8>,
    aaguid: [u8; 16],
}

impl Model {
    /// The `packed` statement {alg: ES256, sig, x5c: [its certificate]}.
    fn statement(&self, auth_data: &[u8], client_data: &str) -> Vec<u8> {
        let mut statement = vec![0xa3];
        statement.extend(cbor_text("alg"));
        statement.push(0x26); // -7
        statement.extend(cbor_text("sig"));
        statement.extend(cbor_bytes(&sign(&self.key, auth_data, client_data)));
        statement.extend(cbor_text("x5c"));
        statement.extend(cbor_head(4, 1));
        statement.extend(cbor_bytes(&self.certificate));
        statement
    }
}

fn name_of(entries: &[(Nid, &str)]) -> X509Name {
    let mut name = X509NameBuilder::new().unwrap();
    for (nid, value) in entries {
        name.append_entry_by_nid(*nid, value).unwrap();
    }
    name.build()
}

/// A version 3 certificate of `key` for `subject` from `issuer`, valid from yesterday
/// for ten years, still to be signed.
fn certificate(
    subject: &openssl::x509::X509NameRef,
    issuer: &openssl::x509::X509NameRef,
    key: &PKey<Private>,
    serial: u32,
) -> X509Builder {
    let mut builder = X509Builder::new().unwrap();
    builder.set_version(2).unwrap();
    let serial = Asn1Integer::from_bn(&BigNum::from_u32(serial).unwrap()).unwrap();
    builder.set_serial_number(&serial).unwrap();
    builder.set_subject_name(subject).unwrap();
    builder.set_issuer_name(issuer).unwrap();
    builder.set_pubkey(key).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let yesterday = Asn1Time::from_unix(i64::try_from(now).unwrap() - 86_400).unwrap();
    builder.set_not_before(&yesterday).unwrap();
    builder
        .set_not_after(&Asn1Time::days_from_now(3650).unwrap())
        .unwrap();
    builder
}
