//! Binding a flow to the browser (or cookieless client) that drives it. The first request
//! of any method binds (a flow nobody had read yet must not take a `POST` from whoever
//! learns its id): it mints a secret, keeps only its hash in the flow, and hands the secret
//! back (`_pf_authn_api_state`, and a cookie). From then on the flow id alone is not
//! enough: every request must present the secret. This is the one write a `GET` may make;
//! it never changes the flow's state. An action binds through its own commit, so a refused
//! one leaves the flow exactly as it was.

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::Flow;
use super::engine::Versioned;
use crate::Adapter;
use crate::error::AdapterError;
use crate::ids::{FlowId, random_alphanumeric};

/// Length of a binding secret (190 bits).
const SECRET_LEN: usize = 32;

fn hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// Whether `presented` opens a flow bound with `binding` (constant time).
fn matches(binding: &str, presented: Option<&str>) -> bool {
    presented.is_some_and(|secret| bool::from(hash(secret).as_bytes().ct_eq(binding.as_bytes())))
}

impl Flow {
    /// Refuses a request that does not carry the secret of a bound flow.
    pub fn check_binding(&self, presented: Option<&str>) -> Result<(), AdapterError> {
        match &self.browser_binding {
            Some(binding) if !matches(binding, presented) => Err(AdapterError::Forbidden(
                "this flow is bound to another client: present its X-PF-Authn-API-State",
            )),
            _ => Ok(()),
        }
    }
}

impl Adapter {
    /// The flow for a browser's `GET`: checks the binding, or binds an unbound flow to this
    /// caller. Returns the flow and the secret this caller must present from now on.
    pub async fn flow_for_browser(
        &self,
        id: &str,
        presented: Option<&str>,
    ) -> Result<(Flow, String), AdapterError> {
        let id = FlowId::parse(id).ok_or(AdapterError::NotFound("flow"))?;
        let ((flow, _), minted) = self.bound_flow(&id, presented).await?;
        let secret = minted.unwrap_or_else(|| presented.unwrap_or_default().to_owned());
        Ok((flow, secret))
    }

    /// A browser-driven flow at `version` for an action: a bound flow must be presented its
    /// secret; an unbound one comes back bound to this caller in memory only, at the same
    /// version, so that the binding is written by the action's own commit and a refused
    /// action writes nothing. The secret is returned when this call minted it.
    pub(crate) fn bound_for_action(
        (mut flow, version): Versioned,
        presented: Option<&str>,
    ) -> Result<(Versioned, Option<String>), AdapterError> {
        if flow.kind() == super::FlowKind::Ciba {
            return Err(AdapterError::NotFound("flow"));
        }
        if flow.browser_binding.is_some() {
            flow.check_binding(presented)?;
            return Ok(((flow, version), None));
        }
        let secret = random_alphanumeric(SECRET_LEN);
        flow.browser_binding = Some(hash(&secret));
        Ok(((flow, version), Some(secret)))
    }

    /// A browser-driven flow and its version for a request of any method: a bound flow
    /// must be presented its secret; an unbound one is bound to this caller first. The
    /// secret is returned when this call minted it (the caller must hand it back).
    pub(crate) async fn bound_flow(
        &self,
        id: &FlowId,
        presented: Option<&str>,
    ) -> Result<(Versioned, Option<String>), AdapterError> {
        let (flow, version) = self.load_versioned(id).await?;
        if flow.browser_binding.is_some() {
            flow.check_binding(presented)?;
            return Ok(((flow, version), None));
        }
        let secret = random_alphanumeric(SECRET_LEN);
        let mut bound = flow.clone();
        bound.browser_binding = Some(hash(&secret));
        match self.commit_head(&bound, version).await {
            Ok(()) => Ok(((bound, version + 1), Some(secret))),
            // Someone else's request won: bound to them, unless this caller is them.
            Err(AdapterError::Conflict(_)) => {
                let (flow, version): Versioned = self.load_versioned(id).await?;
                flow.check_binding(presented)?;
                Ok(((flow, version), None))
            }
            Err(error) => Err(error),
        }
    }
}
