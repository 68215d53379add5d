//! Users: who a flow is about. Created from configuration or, just in time, from what a
//! federation server says about them.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::AdapterError;
use crate::keys;
use crate::store::{Store, StoreError, Ttl};

/// Longest accepted user id.
const MAX_ID_LEN: usize = 128;
/// Longest accepted free-text attribute (names, email, phone).
const MAX_FIELD_LEN: usize = 256;

/// A user id: 1 to 128 characters from a set safe in keys, URLs and logs.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct UserId(String);

/// The user of a flow that does not know its user yet (QR sign-on before the scan). It
/// cannot be parsed from input, so no real user can ever have it.
const ANONYMOUS: &str = "~anonymous";

impl UserId {
    /// The placeholder user of a flow whose user is not known yet.
    pub fn anonymous() -> Self {
        Self(ANONYMOUS.to_owned())
    }

    /// Whether this is [`UserId::anonymous`].
    pub fn is_anonymous(&self) -> bool {
        self.0 == ANONYMOUS
    }

    /// Parses a user id, naming what is wrong with it.
    pub fn parse(raw: &str) -> Result<Self, String> {
        if raw.is_empty() || raw.len() > MAX_ID_LEN {
            return Err(format!("a user id has 1 to {MAX_ID_LEN} characters"));
        }
        if !raw
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@' | '+'))
        {
            return Err("a user id uses letters, digits and `._-@+` only".to_owned());
        }
        Ok(Self(raw.to_owned()))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for UserId {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        if raw == ANONYMOUS {
            // Only stored flows carry it; validate() refuses it in any profile.
            return Ok(Self(raw));
        }
        Self::parse(&raw).map_err(serde::de::Error::custom)
    }
}

/// What assent knows about a user.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserProfile {
    /// Stable identifier (the subject of results and tokens).
    pub id: UserId,
    /// Login name, unique.
    pub username: String,
    /// Given name.
    #[serde(default)]
    pub first_name: Option<String>,
    /// Family name.
    #[serde(default)]
    pub last_name: Option<String>,
    /// Email address.
    #[serde(default)]
    pub email: Option<String>,
    /// Mobile number for SMS, E.164.
    #[serde(default)]
    pub phone: Option<String>,
    /// Number for voice calls, E.164.
    #[serde(default)]
    pub voice: Option<String>,
    /// Directory groups.
    #[serde(default)]
    pub groups: Vec<String>,
    /// Free attributes from the federation server.
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
    /// Argon2 hash (PHC string) of the user's CIBA `user_code`, if they set one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_code_hash: Option<String>,
}

impl UserProfile {
    /// Checks sizes and formats; the message says what is wrong.
    pub fn validate(&self) -> Result<(), String> {
        if self.id.is_anonymous() {
            return Err("`id` is reserved".to_owned());
        }
        let fields = [
            ("username", Some(&self.username)),
            ("first_name", self.first_name.as_ref()),
            ("last_name", self.last_name.as_ref()),
            ("email", self.email.as_ref()),
            ("phone", self.phone.as_ref()),
            ("voice", self.voice.as_ref()),
        ];
        for (name, value) in fields {
            if value.is_some_and(|value| {
                value.len() > MAX_FIELD_LEN || value.chars().any(crate::params::is_deceptive)
            }) {
                return Err(format!(
                    "`{name}` is longer than {MAX_FIELD_LEN} bytes or holds control characters"
                ));
            }
        }
        if self.username.is_empty() {
            return Err("`username` is empty".to_owned());
        }
        if self
            .email
            .as_ref()
            .is_some_and(|email| !email.contains('@'))
        {
            return Err("`email` is not an email address".to_owned());
        }
        for (name, phone) in [("phone", &self.phone), ("voice", &self.voice)] {
            if phone.as_ref().is_some_and(|phone| !is_e164(phone)) {
                return Err(format!(
                    "`{name}` is not an E.164 number (+ and 8 to 15 digits)"
                ));
            }
        }
        if self.groups.len() > 64 || self.attributes.len() > 64 {
            return Err("at most 64 groups and 64 attributes".to_owned());
        }
        if self
            .attributes
            .iter()
            .chain(self.groups.iter().map(|group| (group, group)))
            .any(|(key, value)| key.len() > MAX_FIELD_LEN || value.len() > MAX_FIELD_LEN)
        {
            return Err(format!(
                "groups and attributes are at most {MAX_FIELD_LEN} bytes"
            ));
        }
        Ok(())
    }
}

fn is_e164(phone: &str) -> bool {
    phone.strip_prefix('+').is_some_and(|digits| {
        (8..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit())
    })
}

/// Creates or updates a user's profile, and the login-hint index (username, email,
/// phone). Nothing is written when the profile is unchanged, so that a returning user
/// costs one read. A user code set earlier is kept unless a new one is given.
pub async fn upsert(store: &dyn Store, profile: &UserProfile) -> Result<(), AdapterError> {
    let existing = find(store, &profile.id).await?;
    let mut profile = profile.clone();
    if profile.user_code_hash.is_none() {
        profile.user_code_hash = existing
            .as_ref()
            .and_then(|existing| existing.user_code_hash.clone());
    }
    if existing.as_ref() == Some(&profile) {
        return Ok(());
    }
    let value = serde_json::to_vec(&profile).map_err(AdapterError::internal)?;
    store
        .put(&keys::user(&profile.id), &value, Ttl::Persist)
        .await?;
    for (kind, login) in logins(&profile) {
        claim_login(store, &profile.id, kind, &login).await?;
    }
    Ok(())
}

/// Points a login hint at `user`, unless another user still holds it: the first owner
/// keeps it, so a new profile cannot take over someone else's email or phone.
async fn claim_login(
    store: &dyn Store,
    user: &UserId,
    kind: &str,
    login: &str,
) -> Result<(), AdapterError> {
    let key = keys::login(kind, login);
    let id = user.as_str().as_bytes();
    if store.insert(&key, id, Ttl::Persist).await? {
        return Ok(());
    }
    let Some(record) = store.get(&key).await? else {
        store.put(&key, id, Ttl::Persist).await?;
        return Ok(());
    };
    if record.value == id {
        return Ok(());
    }
    let owner = String::from_utf8(record.value)
        .ok()
        .and_then(|owner| UserId::parse(&owner).ok());
    let still_held = match &owner {
        Some(owner) => find(store, owner)
            .await?
            .is_some_and(|profile| logins(&profile).contains(&(kind, login.to_owned()))),
        None => false,
    };
    if still_held {
        tracing::warn!(user = %user, kind, "login hint belongs to another user; not indexed");
        return Ok(());
    }
    // The previous owner let it go: compare-and-set, so a concurrent claim wins cleanly.
    match store
        .transition(&key, record.version, id, Ttl::Keep, None)
        .await
    {
        Ok(_) | Err(StoreError::Conflict) | Err(StoreError::NotFound) => Ok(()),
        Err(error) => Err(error.into()),
    }
}

/// The identifiers a person may give as a login hint, normalised.
fn logins(profile: &UserProfile) -> Vec<(&'static str, String)> {
    let mut logins = vec![("username", profile.username.to_lowercase())];
    if let Some(email) = &profile.email {
        logins.push(("email", email.to_lowercase()));
    }
    if let Some(phone) = &profile.phone {
        logins.push(("phone", phone.clone()));
    }
    logins
}

/// Finds a user by username, email or phone. The index may be stale after a change, so
/// the profile found must still carry the identifier.
pub async fn find_by_login(
    store: &dyn Store,
    hint: &str,
) -> Result<Option<UserProfile>, AdapterError> {
    let kind = if hint.contains('@') {
        "email"
    } else if hint.starts_with('+') {
        "phone"
    } else {
        "username"
    };
    let normalised = if kind == "phone" {
        hint.to_owned()
    } else {
        hint.to_lowercase()
    };
    if normalised.is_empty() || normalised.len() > MAX_FIELD_LEN {
        return Ok(None);
    }
    let Some(record) = store.get(&keys::login(kind, &normalised)).await? else {
        return Ok(None);
    };
    let Some(id) = String::from_utf8(record.value)
        .ok()
        .and_then(|id| UserId::parse(&id).ok())
    else {
        return Ok(None);
    };
    Ok(find(store, &id)
        .await?
        .filter(|profile| logins(profile).contains(&(kind, normalised.clone()))))
}

/// Reads a user's profile.
pub async fn find(store: &dyn Store, id: &UserId) -> Result<Option<UserProfile>, AdapterError> {
    match store.get(&keys::user(id)).await? {
        Some(record) => Ok(Some(
            serde_json::from_slice(&record.value).map_err(AdapterError::internal)?,
        )),
        None => Ok(None),
    }
}
