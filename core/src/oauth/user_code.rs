//! CIBA user codes (CIBA Core §7.1): a short secret the person chose, checked against its
//! Argon2 hash, with a per-user limit on wrong codes so that no client that can call the
//! endpoint can guess one.

use std::time::Duration;

use argon2::password_hash::{PasswordHash, PasswordVerifier};

use crate::error::AdapterError;
use crate::ids::random_alphanumeric;
use crate::keys;
use crate::store::{Store, Ttl};
use crate::user::UserProfile;

/// Wrong user codes tolerated per user within [`USER_CODE_WINDOW`].
pub const USER_CODE_TRIES: usize = 5;
/// How long wrong user codes are remembered.
pub const USER_CODE_WINDOW: Duration = Duration::from_secs(15 * 60);

/// What a user code check came to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UserCodeCheck {
    /// The code is the user's.
    Accepted,
    /// No code was given (not counted as wrong).
    Missing,
    /// The code is wrong, or the user has none; counted.
    Wrong,
    /// Too many wrong codes lately: refused without looking at the code.
    Limited,
}

/// Users' codes and their recent wrong ones.
pub struct UserCodes<'a> {
    store: &'a dyn Store,
}

impl<'a> UserCodes<'a> {
    /// The wrong codes counted in `store`.
    pub fn new(store: &'a dyn Store) -> Self {
        Self { store }
    }

    /// Checks `given` against `user`'s code, under the limit on wrong ones.
    pub async fn check(
        &self,
        user: &UserProfile,
        given: Option<&str>,
    ) -> Result<UserCodeCheck, AdapterError> {
        let failures = keys::user_code_failures(&user.id);
        if self.store.index_members(&failures).await?.len() >= USER_CODE_TRIES {
            return Ok(UserCodeCheck::Limited);
        }
        let Some(given) = given else {
            return Ok(UserCodeCheck::Missing);
        };
        let (hash, given) = (user.user_code_hash.clone(), given.to_owned());
        // Argon2 is deliberately slow: keep it off the request-serving thread.
        let right = tokio::task::spawn_blocking(move || matches(hash.as_deref(), &given))
            .await
            .map_err(AdapterError::internal)?;
        if right {
            return Ok(UserCodeCheck::Accepted);
        }
        // One member per failure, in a set that expires.
        let member = random_alphanumeric(12);
        let ttl = Ttl::Set(USER_CODE_WINDOW);
        if let Err(error) = self.store.index_add(&failures, &member, ttl, None).await {
            tracing::warn!(%error, "could not record a wrong user code");
        }
        Ok(UserCodeCheck::Wrong)
    }
}

/// Whether `given` matches the Argon2 `hash` (no hash: nothing matches).
fn matches(hash: Option<&str>, given: &str) -> bool {
    hash.and_then(|hash| PasswordHash::new(hash).ok())
        .is_some_and(|hash| {
            argon2::Argon2::default()
                .verify_password(given.as_bytes(), &hash)
                .is_ok()
        })
}

#[cfg(test)]
mod tests {
    use argon2::password_hash::{PasswordHasher, SaltString};
    use argon2::{Algorithm, Argon2, Params, Version};

    use super::*;
    use crate::store::MemoryStore;
    use crate::user::UserId;

    fn user(code: Option<&str>) -> UserProfile {
        // Tiny Argon2 parameters (kept in the hash) keep the test fast.
        let argon = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(8, 1, 1, None).expect("parameters"),
        );
        let salt = SaltString::from_b64("c29tZXNhbHRzYWx0").expect("salt");
        let hash = code.map(|code| {
            argon
                .hash_password(code.as_bytes(), &salt)
                .expect("hash")
                .to_string()
        });
        UserProfile {
            id: UserId::parse("alice").expect("valid user"),
            username: "alice".into(),
            first_name: None,
            last_name: None,
            email: None,
            phone: None,
            voice: None,
            groups: Vec::new(),
            attributes: Default::default(),
            user_code_hash: hash,
        }
    }

    #[tokio::test]
    async fn the_right_code_passes_and_a_missing_one_is_not_counted() {
        let store = MemoryStore::new();
        let codes = UserCodes::new(&store);
        let alice = user(Some("4711"));
        assert_eq!(
            codes.check(&alice, Some("4711")).await.ok(),
            Some(UserCodeCheck::Accepted)
        );
        for _ in 0..USER_CODE_TRIES + 1 {
            assert_eq!(
                codes.check(&alice, None).await.ok(),
                Some(UserCodeCheck::Missing)
            );
        }
        assert_eq!(
            codes.check(&alice, Some("4711")).await.ok(),
            Some(UserCodeCheck::Accepted)
        );
    }

    #[tokio::test]
    async fn too_many_wrong_codes_lock_even_the_right_one_out() {
        let store = MemoryStore::new();
        let codes = UserCodes::new(&store);
        let alice = user(Some("4711"));
        for _ in 0..USER_CODE_TRIES {
            assert_eq!(
                codes.check(&alice, Some("0000")).await.ok(),
                Some(UserCodeCheck::Wrong)
            );
        }
        assert_eq!(
            codes.check(&alice, Some("4711")).await.ok(),
            Some(UserCodeCheck::Limited)
        );
        assert_eq!(
            codes.check(&alice, None).await.ok(),
            Some(UserCodeCheck::Limited)
        );
    }

    #[tokio::test]
    async fn a_user_without_a_code_has_no_right_answer() {
        let store = MemoryStore::new();
        let codes = UserCodes::new(&store);
        assert_eq!(
            codes.check(&user(None), Some("4711")).await.ok(),
            Some(UserCodeCheck::Wrong)
        );
    }
}
