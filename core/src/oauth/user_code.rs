//! CIBA user codes (CIBA Core §7.1): a short secret the person chose, checked against its
//! Argon2 hash, under a per-user limit on codes checked so that no client that can call
//! the endpoint can guess one. The limit is one atomic store call *before* the check (as
//! the passcode limits are): counting only after a wrong answer let 40 concurrent guesses
//! all pass a limit of 5.

use std::time::Duration;

use argon2::password_hash::{PasswordHash, PasswordVerifier};

use crate::error::AdapterError;
use crate::keys;
use crate::store::Store;
use crate::user::UserProfile;

/// User codes checked per user within [`USER_CODE_WINDOW`]; the right one clears the count.
pub const USER_CODE_TRIES: u32 = 5;
/// How long checked user codes are remembered.
pub const USER_CODE_WINDOW: Duration = Duration::from_secs(15 * 60);

/// What a user code check came to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UserCodeCheck {
    /// The code is the user's.
    Accepted,
    /// No code was given (not counted).
    Missing,
    /// The code is wrong, or the user has none; counted.
    Wrong,
    /// Too many codes checked lately: refused without looking at the code.
    Limited,
}

/// Users' codes and the limit on checking them.
pub struct UserCodes<'a> {
    store: &'a dyn Store,
}

impl<'a> UserCodes<'a> {
    /// The checks counted in `store`.
    pub fn new(store: &'a dyn Store) -> Self {
        Self { store }
    }

    /// Checks `given` against `user`'s code, under the limit.
    pub async fn check(
        &self,
        user: &UserProfile,
        given: Option<&str>,
    ) -> Result<UserCodeCheck, AdapterError> {
        let tries = keys::user_code_tries(&user.id);
        let Some(given) = given else {
            // Nothing to guess with: not counted, but a locked-out user is told so.
            let held = self.store.rate_count(&tries, USER_CODE_WINDOW).await?;
            return Ok(if held >= USER_CODE_TRIES {
                UserCodeCheck::Limited
            } else {
                UserCodeCheck::Missing
            });
        };
        // Counted before it is checked, in one atomic step: of any number of concurrent
        // guesses, at most `USER_CODE_TRIES` reach Argon2.
        if !self
            .store
            .rate_limit(&tries, USER_CODE_TRIES, USER_CODE_WINDOW)
            .await?
        {
            return Ok(UserCodeCheck::Limited);
        }
        let (hash, given) = (user.user_code_hash.clone(), given.to_owned());
        // Argon2 is deliberately slow: keep it off the request-serving thread.
        let right = tokio::task::spawn_blocking(move || matches(hash.as_deref(), &given))
            .await
            .map_err(AdapterError::internal)?;
        if !right {
            return Ok(UserCodeCheck::Wrong);
        }
        // The person knows the code: their own sign-ins never lock them out.
        if let Err(error) = self.store.delete(&tries).await {
            tracing::warn!(%error, "could not clear the user code count");
        }
        Ok(UserCodeCheck::Accepted)
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
            language: None,
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
        for _ in 0..=USER_CODE_TRIES {
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

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_guesses_never_pass_the_limit() {
        let store = std::sync::Arc::new(MemoryStore::new());
        let alice = std::sync::Arc::new(user(Some("4711")));
        let guesses: Vec<_> = (0..40)
            .map(|i| {
                let (store, alice) = (store.clone(), alice.clone());
                tokio::spawn(async move {
                    UserCodes::new(store.as_ref())
                        .check(&alice, Some(&format!("{i:04}")))
                        .await
                        .ok()
                })
            })
            .collect();
        let mut outcomes = Vec::new();
        for guess in guesses {
            outcomes.push(guess.await.expect("joined"));
        }
        let wrong = outcomes
            .iter()
            .filter(|outcome| **outcome == Some(UserCodeCheck::Wrong))
            .count();
        let limited = outcomes
            .iter()
            .filter(|outcome| **outcome == Some(UserCodeCheck::Limited))
            .count();
        assert_eq!(
            (wrong, limited),
            (USER_CODE_TRIES as usize, 35),
            "{outcomes:?}"
        );
    }

    #[tokio::test]
    async fn the_right_code_clears_the_count() {
        let store = MemoryStore::new();
        let codes = UserCodes::new(&store);
        let alice = user(Some("4711"));
        for _ in 0..3 {
            for _ in 0..USER_CODE_TRIES - 1 {
                assert_eq!(
                    codes.check(&alice, Some("0000")).await.ok(),
                    Some(UserCodeCheck::Wrong)
                );
            }
            assert_eq!(
                codes.check(&alice, Some("4711")).await.ok(),
                Some(UserCodeCheck::Accepted)
            );
        }
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
