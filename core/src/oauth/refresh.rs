//! Refresh tokens: opaque, kept only as their SHA-256, spent on use (the client gets a new
//! one each time), and never outliving the session the approval started. The tokens one
//! approval leads to form a family: a spent token presented again means it leaked (the
//! client or an attacker holds a copy), so the whole family is revoked (RFC 6819
//! §5.2.2.3) and whoever holds the newest token must ask the person again.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::clock::Clock;
use crate::error::AdapterError;
use crate::flow::ApprovalMethod;
use crate::ids::random_alphanumeric;
use crate::keys;
use crate::store::{Store, StoreError, Ttl};
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
    /// The family of tokens rotated from one approval; given on issue, handed on by
    /// rotation. Grants stored before families were recorded have none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub family: Option<String>,
}

/// A token's record: its grant, and whether it was already rotated. A spent token is kept
/// (until its session's end) so that its reuse is recognised.
#[derive(Serialize, Deserialize)]
struct StoredToken {
    #[serde(flatten)]
    grant: RefreshGrant,
    #[serde(default)]
    spent: bool,
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

    /// A new token for `grant`, kept until the grant's end; a grant without a family
    /// starts one.
    pub async fn issue(&self, grant: &RefreshGrant) -> Result<String, AdapterError> {
        let token = random_alphanumeric(43);
        let mut grant = grant.clone();
        grant.family.get_or_insert_with(|| random_alphanumeric(22));
        let stored = StoredToken {
            grant,
            spent: false,
        };
        let grant = &stored.grant;
        let value = serde_json::to_vec(&stored).map_err(AdapterError::internal)?;
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
        let Some(stored) = record.and_then(|record| self.live(&record.value, client_id)) else {
            return Ok(None);
        };
        if stored.spent || self.revoked(&stored.grant).await? {
            return Ok(None);
        }
        Ok(Some(stored.grant))
    }

    /// Spends a live token of `client_id` and returns its grant: of concurrent uses
    /// exactly one gets it. A token of another client is neither accepted nor spent. A
    /// token used before revokes its family: every token rotated from the same approval
    /// stops working.
    pub async fn redeem(
        &self,
        token: &str,
        client_id: &str,
    ) -> Result<Option<RefreshGrant>, AdapterError> {
        let key = keys::refresh_token(&token_hash(token));
        let Some(record) = self.store.get(&key).await? else {
            return Ok(None);
        };
        // Checked before it is spent, so another client cannot burn it.
        let Some(mut stored) = self.live(&record.value, client_id) else {
            return Ok(None);
        };
        if stored.spent {
            self.revoke(&stored.grant).await?;
            return Ok(None);
        }
        if self.revoked(&stored.grant).await? {
            return Ok(None);
        }
        stored.spent = true;
        let value = serde_json::to_vec(&stored).map_err(AdapterError::internal)?;
        match self
            .store
            .transition(&key, record.version, &value, Ttl::Keep, None)
            .await
        {
            Ok(_) => Ok(Some(stored.grant)),
            // Two uses at once: one of them holds a copy it should not have.
            Err(StoreError::Conflict | StoreError::NotFound) => {
                self.revoke(&stored.grant).await?;
                Ok(None)
            }
            Err(error) => Err(error.into()),
        }
    }

    /// Whether `grant`'s family was revoked.
    async fn revoked(&self, grant: &RefreshGrant) -> Result<bool, AdapterError> {
        match &grant.family {
            Some(family) => Ok(self
                .store
                .get(&keys::revoked_refresh_family(family))
                .await?
                .is_some()),
            None => Ok(false),
        }
    }

    /// Revokes `grant`'s family until the session it belongs to would have ended.
    async fn revoke(&self, grant: &RefreshGrant) -> Result<(), AdapterError> {
        let Some(family) = &grant.family else {
            return Ok(());
        };
        tracing::warn!(
            client_id = %grant.client_id,
            "a spent refresh token was used again: its family is revoked"
        );
        let left = grant
            .expires_at
            .saturating_sub(self.clock.now_secs())
            .max(1);
        self.store
            .put(
                &keys::revoked_refresh_family(family),
                b"1",
                Ttl::Set(Duration::from_secs(left)),
            )
            .await?;
        Ok(())
    }

    fn live(&self, value: &[u8], client_id: &str) -> Option<StoredToken> {
        let now = self.clock.now_secs();
        serde_json::from_slice::<StoredToken>(value)
            .ok()
            .filter(|stored| stored.grant.client_id == client_id && stored.grant.expires_at > now)
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
            family: None,
        }
    }

    /// The grant as issued: the same, in a family of its own.
    fn in_family(found: Option<RefreshGrant>) -> Option<RefreshGrant> {
        found.map(|found| {
            assert!(found.family.is_some(), "issued tokens start a family");
            RefreshGrant {
                family: None,
                ..found
            }
        })
    }

    #[tokio::test]
    async fn a_token_works_once() {
        let (store, clock) = (MemoryStore::new(), ManualClock::at_secs(NOW));
        let tokens = RefreshTokens::new(&store, &clock);
        let token = tokens.issue(&grant(NOW + 60)).await.expect("issued");
        assert_eq!(
            tokens.find(&token, "rp").await.ok().map(in_family),
            Some(Some(grant(NOW + 60)))
        );
        assert_eq!(
            tokens.redeem(&token, "rp").await.ok().map(in_family),
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

    #[tokio::test]
    async fn reusing_a_rotated_token_revokes_its_whole_family() {
        let (store, clock) = (MemoryStore::new(), ManualClock::at_secs(NOW));
        let tokens = RefreshTokens::new(&store, &clock);
        let first = tokens.issue(&grant(NOW + 600)).await.expect("issued");
        let rotated = tokens
            .redeem(&first, "rp")
            .await
            .expect("redeemed")
            .expect("live");
        let second = tokens.issue(&rotated).await.expect("rotated");
        let again = tokens
            .redeem(&second, "rp")
            .await
            .expect("redeemed")
            .expect("live");
        assert_eq!(again.family, rotated.family, "rotation keeps the family");
        let third = tokens.issue(&again).await.expect("rotated");
        // Another family, from another approval, is not touched.
        let other = tokens.issue(&grant(NOW + 600)).await.expect("issued");

        // The first token comes back: someone holds a copy.
        assert_eq!(tokens.redeem(&first, "rp").await.ok(), Some(None));
        assert_eq!(tokens.find(&third, "rp").await.ok(), Some(None));
        assert_eq!(tokens.redeem(&third, "rp").await.ok(), Some(None));
        assert!(matches!(tokens.redeem(&other, "rp").await, Ok(Some(_))));
    }

    #[tokio::test]
    async fn tokens_stored_before_families_still_work_once() {
        let (store, clock) = (MemoryStore::new(), ManualClock::at_secs(NOW));
        let tokens = RefreshTokens::new(&store, &clock);
        let old = format!(
            r#"{{"client_id":"rp","subject":"alice","scopes":["openid"],"auth_time":1,
            "method":"push","expires_at":{}}}"#,
            NOW + 60
        );
        store
            .insert(
                &keys::refresh_token(&token_hash("old-token")),
                old.as_bytes(),
                Ttl::Persist,
            )
            .await
            .expect("stored");
        let grant = tokens.redeem("old-token", "rp").await.expect("redeemed");
        assert_eq!(grant.map(|grant| grant.family), Some(None));
        assert_eq!(tokens.redeem("old-token", "rp").await.ok(), Some(None));
    }

    #[test]
    fn grants_from_before_the_method_was_recorded_were_pushes() {
        let stored = r#"{"client_id":"rp","subject":"alice","scopes":["openid"],
            "auth_time":1,"expires_at":2}"#;
        let grant: RefreshGrant = serde_json::from_str(stored).expect("old grant");
        assert_eq!(grant.method, ApprovalMethod::Push);
    }
}
