//! Spent `jti`s of client assertions and signed request objects (RFC 7523 §3, CIBA
//! §7.1.1): a client JWT is accepted once while it would still be accepted at all.

use std::time::Duration;

use crate::clock::Clock;
use crate::error::AdapterError;
use crate::keys;
use crate::store::Store;

/// How long a spent `jti` is kept past its JWT's expiry: instances' clocks may differ.
const MARGIN: Duration = Duration::from_secs(60);

/// The spent ids of clients' JWTs.
pub struct ClientJtis<'a> {
    store: &'a dyn Store,
    clock: &'a dyn Clock,
}

impl<'a> ClientJtis<'a> {
    /// The ids kept in `store`, for as long as `clock` says their JWTs live.
    pub fn new(store: &'a dyn Store, clock: &'a dyn Clock) -> Self {
        Self { store, clock }
    }

    /// Spends `jti` of a JWT by `client_id` that expires at `expires_at` (seconds since
    /// the epoch); `false` when it was spent already.
    pub async fn spend(
        &self,
        client_id: &str,
        jti: &str,
        expires_at: u64,
    ) -> Result<bool, AdapterError> {
        let left = Duration::from_secs(expires_at.saturating_sub(self.clock.now_secs()));
        Ok(self
            .store
            .spend(&keys::client_jti(client_id, jti), left + MARGIN)
            .await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use crate::store::MemoryStore;

    #[tokio::test]
    async fn a_jti_is_spent_once_per_client() {
        let (store, clock) = (MemoryStore::new(), ManualClock::at_secs(1_700_000_000));
        let jtis = ClientJtis::new(&store, &clock);
        let exp = 1_700_000_060;
        assert!(jtis.spend("rp", "j1", exp).await.expect("spent"));
        assert!(!jtis.spend("rp", "j1", exp).await.expect("refused"));
        assert!(
            jtis.spend("other", "j1", exp)
                .await
                .expect("another client's")
        );
        assert!(jtis.spend("rp", "j2", exp).await.expect("another id"));
    }
}
