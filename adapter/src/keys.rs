//! Every store key and channel name, built here and nowhere else.
//!
//! Keys of one user share the hash tag `{u:<userId>}` and keys of one flow share
//! `{<flowId>}`, so that a Redis Cluster keeps what one script touches on one slot.

use crate::user::UserId;

/// A user's profile.
pub fn user(user: &UserId) -> String {
    format!("user:{{u:{user}}}")
}
