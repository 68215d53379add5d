//! The crypto baseline: the signatures and verifications a flow must do, timed in a loop
//! with keys parsed once, so a flow's CPU can be read against the floor its crypto sets.

use std::time::{Duration, Instant};

use josekit::jws::{ES256, JwsHeader, RS256};
use josekit::jwt::{self, JwtPayload};

use crate::BenchError;

/// What one operation costs, measured now on this machine.
pub struct CryptoCosts {
    /// Verifying an ES256 JWS (a device JWT or a proof).
    pub es256_verify: Duration,
    /// Signing an ES256 JWT (access tokens, by default).
    pub es256_sign: Duration,
    /// Signing an RS256 JWT (ID tokens, by default).
    pub rs256_sign: Duration,
}

impl CryptoCosts {
    /// Times each operation over `rounds` iterations.
    pub fn measure(rounds: u32) -> Result<Self, BenchError> {
        let device = ES256.generate_key_pair()?;
        let signer = ES256.signer_from_jwk(&device.to_jwk_private_key())?;
        let verifier = ES256.verifier_from_jwk(&device.to_jwk_public_key())?;
        let mut payload = JwtPayload::new();
        payload.set_issuer("device-1");
        payload.set_subject("bench");
        let token = jwt::encode_with_signer(&payload, &JwsHeader::new(), &signer)?;
        let es256_verify = time(rounds, || {
            jwt::decode_with_verifier(&token, &verifier).map(|_| ())
        })?;
        let es256_sign = time(rounds, || {
            jwt::encode_with_signer(&payload, &JwsHeader::new(), &signer).map(|_| ())
        })?;

        let issuer = RS256.generate_key_pair(2048)?;
        let rs_signer = RS256.signer_from_der(issuer.to_der_private_key())?;
        let rs256_sign = time(rounds, || {
            jwt::encode_with_signer(&payload, &JwsHeader::new(), &rs_signer).map(|_| ())
        })?;
        Ok(Self {
            es256_verify,
            es256_sign,
            rs256_sign,
        })
    }
}

fn time(
    rounds: u32,
    mut op: impl FnMut() -> Result<(), josekit::JoseError>,
) -> Result<Duration, BenchError> {
    let rounds = rounds.max(1);
    let started = Instant::now();
    for _ in 0..rounds {
        op()?;
    }
    Ok(started.elapsed() / rounds)
}
