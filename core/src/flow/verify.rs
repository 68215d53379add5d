//! The one check every device decision goes through, whatever the kind (out-of-band,
//! transaction, CIBA, the silent push and approval after a QR scan, a primary admitting a
//! new device): the proof's signature by the device key, then — against the flow — the
//! request id, the device asked, the request still waiting, the parameters shown and the
//! number picked. A kind's machine only sees a [`Verdict`].

use super::{Flow, Push, Status};
use crate::device_key::{self, PublicDeviceKey};
use crate::error::FlowError;
use crate::ids::{AuthId, DeviceId};

pub use assent_proto::device::Decision;

/// A device's answer whose proof was verified with the device's key. The only way to
/// make one is [`DeviceAnswer::from_proof`], so no decision reaches a machine unsigned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceAnswer {
    auth_id: AuthId,
    device: DeviceId,
    decision: Decision,
    params_hash: String,
    number: Option<u8>,
}

impl DeviceAnswer {
    /// Verifies `proof` (a compact JWS, ES256, by `key`) and that it binds this request
    /// and this decision.
    pub fn from_proof(
        proof: &str,
        key: &PublicDeviceKey,
        device: &DeviceId,
        auth_id: &AuthId,
        decision: Decision,
    ) -> Result<Self, FlowError> {
        let claims = device_key::verify_proof(proof, key).map_err(FlowError::BadProof)?;
        if claims.auth_id != auth_id.as_str() || claims.decision != decision {
            return Err(FlowError::BadProof(
                "the proof does not bind this request and this decision",
            ));
        }
        Ok(Self {
            auth_id: auth_id.clone(),
            device: device.clone(),
            decision,
            params_hash: claims.params_hash,
            number: claims.number,
        })
    }

    /// The request answered.
    pub fn auth_id(&self) -> &AuthId {
        &self.auth_id
    }

    /// The device that answered.
    pub fn device(&self) -> &DeviceId {
        &self.device
    }

    /// What it decided.
    pub fn decision(&self) -> Decision {
        self.decision
    }

    #[cfg(test)]
    pub(crate) fn signed(
        auth_id: &AuthId,
        device: &DeviceId,
        decision: Decision,
        params_hash: String,
        number: Option<u8>,
    ) -> Self {
        Self {
            auth_id: auth_id.clone(),
            device: device.clone(),
            decision,
            params_hash,
            number,
        }
    }
}

/// What a verified answer means for the flow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The person approved (with the right number, when there was one).
    Approved,
    /// The person denied.
    Denied,
    /// Approved with another number than the browser shows: what a push-fatigue attack
    /// looks like, so it counts as a denial.
    WrongNumber,
    /// The app answered a silent push with its key: now the person is asked.
    SilentVerified,
}

/// Checks `answer` against the request `flow` waits for at `now_ms`: the push must be
/// the flow's current one, addressed to that device, still waiting (and not expired);
/// the proof must cover the parameters the flow shows; an approval must carry the number.
pub fn check<'a>(
    flow: &'a Flow,
    answer: &DeviceAnswer,
    now_ms: u64,
) -> Result<(&'a Push, Verdict), FlowError> {
    let push = flow.push().ok_or(FlowError::NotPending)?;
    if push.auth_id != answer.auth_id || push.device_id != answer.device {
        return Err(FlowError::NotPending);
    }
    match flow.status(now_ms) {
        Status::PushConfirmationWaiting => {}
        Status::PushConfirmationTimedOut => return Err(FlowError::RequestExpired),
        _ => return Err(FlowError::NotPending),
    }
    if answer.params_hash != flow.params.digest() {
        return Err(FlowError::BadProof(
            "the proof covers other parameters than the request shows",
        ));
    }
    let verdict = match answer.decision {
        Decision::Deny => Verdict::Denied,
        Decision::Approve if push.silent => Verdict::SilentVerified,
        Decision::Approve
            if push
                .number
                .is_some_and(|number| answer.number != Some(number)) =>
        {
            Verdict::WrongNumber
        }
        Decision::Approve => Verdict::Approved,
    };
    Ok((push, verdict))
}
