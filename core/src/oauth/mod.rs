//! The records behind the CIBA provider's OAuth endpoints: refresh tokens, spent client
//! JWT ids, user code checks and the token signing keys (sealed under the data key).
//! `assent-ciba` speaks the
//! protocol; these services keep its state, so no HTTP crate touches the store.

pub mod refresh;
pub mod replay;
pub mod signing_keys;
pub mod user_code;

use self::refresh::RefreshTokens;
use self::replay::ClientJtis;
use self::signing_keys::SigningKeys;
use self::user_code::UserCodes;
use crate::Adapter;

impl Adapter {
    /// The refresh tokens issued to CIBA clients.
    pub fn refresh_tokens(&self) -> RefreshTokens<'_> {
        RefreshTokens::new(self.store(), self.clock())
    }

    /// The spent `jti`s of client assertions and request objects.
    pub fn client_jtis(&self) -> ClientJtis<'_> {
        ClientJtis::new(self.store(), self.clock())
    }

    /// Users' CIBA user codes and the limit on wrong ones.
    pub fn user_codes(&self) -> UserCodes<'_> {
        UserCodes::new(self.store())
    }

    /// The token signing keys every instance shares.
    pub fn signing_keys(&self) -> SigningKeys<'_> {
        SigningKeys::new(self.store(), self.clock(), self.data_key())
    }
}
