//! Refresh tokens: opaque, kept only as their SHA-256, spent on use (the client gets a new
//! one each time), and never outliving the session the approval started.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::clock::Clock;
use crate::error::AdapterError;
use crate::flow::ApprovalMethod;
use crate::ids::random_alphanumeric;
use crate::keys;
use crate::store::{Store, Ttl};
use crate::user::UserId;

/// What a refresh token stands for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefreshGrant {
    /// The client it was issued to: no other client may use or burn it.
    pub client_id: String,
    /// The user.
    pub subject: UserId,
    /// The scopes granted.
    pub scopes: Vec<String>,
    /// When the person approved (seconds since the epoch).
    pub auth_time: u64,
    /// How the person approved: `amr` and `acr` follow from it.
    #[serde(default = "push_approval")]
    pub method: ApprovalMethod,
    /// The absolute end of the session (seconds since the epoch): rotation hands it on,
    /// never extends it.
    pub expires_at: u64,
}

/// What grants stored before the method was recorded were approved with.
fn push_approval() -> ApprovalMethod {
    ApprovalMethod::Push
}

fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// The refresh tokens of every client.
pub struct RefreshTokens<'a> {
    store: &'a dyn Store,
    clock: &'a dyn Clock,
}

impl<'a> RefreshTokens<'a> {
    /// The tokens in `store`, live by `clock`.
    pub fn new(store: &'a dyn Store, clock: &'a dyn Clock) -> Self {
        Self { store, clock }
    }

    /// A new token for `grant`, kept until the grant's end.
    pub async fn issue(&self, grant: &RefreshGrant) -> Result<String, AdapterError> {
        let token = random_alphanumeric(43);
        let value = serde_json::to_vec(grant).map_err(AdapterError::internal)?;
        let left = grant
            .expires_at
            .saturating_sub(self.clock.now_secs())
            .max(1);
        let fresh = self
            .store
            .insert(
                &keys::refresh_token(&token_hash(&token)),
                &value,
                Ttl::Set(Duration::from_secs(left)),
            )
            .await?;
        if !fresh {
            return Err(AdapterError::internal("refresh token collision"));
        }
        Ok(token)
    }

    /// The grant behind a live token of `client_id`, without spending it.
    pub async fn find(
        &self,
        token: &str,
        client_id: &str,
    ) -> Result<Option<RefreshGrant>, AdapterError> {
        let record = self
            .store
            .get(&keys::refresh_token(&token_hash(token)))
            .await?;
        Ok(record.and_then(|record| self.live(&record.value, client_id)))
    }

    /// Spends a live token of `client_id` and returns its grant: of concurrent uses
    /// exactly one gets it. A token of another client is neither accepted nor spent.
    pub async fn redeem(
        &self,
        token: &str,
        client_id: &str,
    ) -> Result<Option<RefreshGrant>, AdapterError> {
        // Checked before it is spent, so another client cannot burn it.
        if self.find(token, client_id).await?.is_none() {
            return Ok(None);
        }
        let spent = self
            .store
            .consume(&keys::refresh_token(&token_hash(token)))
            .await?;
        Ok(spent.and_then(|value| self.live(&value, client_id)))
    }

    fn live(&self, value: &[u8], client_id: &str) -> Option<RefreshGrant> {
        let now = self.clock.now_secs();
        serde_json::from_slice::<RefreshGrant>(value)
            .ok()
            .filter(|grant| grant.client_id == client_id && grant.expires_at > now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use crate::store::MemoryStore;

    const NOW: u64 = 1_700_000_000;

    fn grant(expires_at: u64) -> RefreshGrant {
        RefreshGrant {
            client_id: "rp".into(),
            subject: UserId::parse("alice").expect("valid user"),
            scopes: vec!["openid".into(), "offline_access".into()],
            auth_time: NOW - 5,
            method: ApprovalMethod::Push,
            expires_at,
        }
    }

    #[tokio::test]
    async fn a_token_works_once() {
        let (store, clock) = (MemoryStore::new(), ManualClock::at_secs(NOW));
        let tokens = RefreshTokens::new(&store, &clock);
        let token = tokens.issue(&grant(NOW + 60)).await.expect("issued");
        assert_eq!(
            tokens.find(&token, "rp").await.ok(),
            Some(Some(grant(NOW + 60)))
        );
        assert_eq!(
            tokens.redeem(&token, "rp").await.ok(),
            Some(Some(grant(NOW + 60)))
        );
        assert_eq!(tokens.redeem(&token, "rp").await.ok(), Some(None));
        assert_eq!(tokens.find(&token, "rp").await.ok(), Some(None));
    }

    #[tokio::test]
    async fn another_client_can_neither_use_nor_burn_it() {
        let (store, clock) = (MemoryStore::new(), ManualClock::at_secs(NOW));
        let tokens = RefreshTokens::new(&store, &clock);
        let token = tokens.issue(&grant(NOW + 60)).await.expect("issued");
        assert_eq!(tokens.find(&token, "other").await.ok(), Some(None));
        assert_eq!(tokens.redeem(&token, "other").await.ok(), Some(None));
        assert!(matches!(tokens.redeem(&token, "rp").await, Ok(Some(_))));
    }

    #[tokio::test]
    async fn a_token_ends_with_its_session() {
        let (store, clock) = (MemoryStore::new(), ManualClock::at_secs(NOW));
        let tokens = RefreshTokens::new(&store, &clock);
        let token = tokens.issue(&grant(NOW + 60)).await.expect("issued");
        clock.advance(Duration::from_secs(59));
        assert!(matches!(tokens.find(&token, "rp").await, Ok(Some(_))));
        clock.advance(Duration::from_secs(1));
        assert_eq!(tokens.find(&token, "rp").await.ok(), Some(None));
        assert_eq!(tokens.redeem(&token, "rp").await.ok(), Some(None));
    }

    #[tokio::test]
    async fn unknown_tokens_are_refused() {
        let (store, clock) = (MemoryStore::new(), ManualClock::at_secs(NOW));
        let tokens = RefreshTokens::new(&store, &clock);
        assert_eq!(tokens.find("nope", "rp").await.ok(), Some(None));
        assert_eq!(tokens.redeem("nope", "rp").await.ok(), Some(None));
    }

    #[test]
    fn grants_from_before_the_method_was_recorded_were_pushes() {
        let stored = r#"{"client_id":"rp","subject":"alice","scopes":["openid"],
            "auth_time":1,"expires_at":2}"#;
        let grant: RefreshGrant = serde_json::from_str(stored).expect("old grant");
        assert_eq!(grant.method, ApprovalMethod::Push);
    }
}
