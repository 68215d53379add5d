//! Users: who a flow is about. Created from configuration or, just in time, from what a
//! federation server says about them.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::AdapterError;
use crate::ids::DeviceId;
use crate::keys;
use crate::otp_device::OtpDevice;
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
    /// The language of the texts sent to them (BCP 47), else the configured default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
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
        if self
            .language
            .as_ref()
            .is_some_and(|tag| !crate::l10n::is_language_tag(tag))
        {
            return Err("`language` is not a BCP 47 language tag (such as de or pt-BR)".to_owned());
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

/// What a flow start says about one field of a stored profile.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Change<T> {
    /// The field was absent: the stored value stays.
    #[default]
    Keep,
    /// The field was `null` or an empty string: the stored value goes.
    Clear,
    /// A new value.
    Set(T),
}

impl Change<String> {
    /// Reads a field that may be absent (`None`), `null` (`Some(None)`) or a string; an
    /// empty (or blank) string clears like `null`, since many directories send `""` for
    /// "no value".
    pub fn from_input(field: Option<Option<String>>) -> Self {
        match field {
            None => Self::Keep,
            Some(None) => Self::Clear,
            Some(Some(value)) if value.trim().is_empty() => Self::Clear,
            Some(Some(value)) => Self::Set(value),
        }
    }
}

impl<T: Clone> Change<T> {
    fn applied_to(&self, stored: Option<T>) -> Option<T> {
        match self {
            Self::Keep => stored,
            Self::Clear => None,
            Self::Set(value) => Some(value.clone()),
        }
    }
}

/// What a federation server says about a user at a flow start: merged into the stored
/// profile, so that a start which omits a field keeps it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProfileUpdate {
    /// Stable identifier.
    pub id: UserId,
    /// Login name (always given).
    pub username: String,
    /// Given name.
    pub first_name: Change<String>,
    /// Family name.
    pub last_name: Change<String>,
    /// Email address.
    pub email: Change<String>,
    /// Mobile number for SMS.
    pub phone: Change<String>,
    /// Number for voice calls (the connector's landline).
    pub voice: Change<String>,
    /// The language of the texts sent to them.
    pub language: Change<String>,
    /// Directory groups: replaced when given (an empty list clears them).
    pub groups: Option<Vec<String>>,
    /// Free attributes: replaced when given.
    pub attributes: Option<BTreeMap<String, String>>,
}

impl ProfileUpdate {
    /// The profile after this update of `stored` (or a new one); the user code set earlier
    /// stays.
    pub fn merged_into(&self, stored: Option<UserProfile>) -> UserProfile {
        let stored = stored.unwrap_or_else(|| UserProfile {
            id: self.id.clone(),
            username: self.username.clone(),
            first_name: None,
            last_name: None,
            email: None,
            phone: None,
            voice: None,
            language: None,
            groups: Vec::new(),
            attributes: BTreeMap::new(),
            user_code_hash: None,
        });
        UserProfile {
            id: self.id.clone(),
            username: self.username.clone(),
            first_name: self.first_name.applied_to(stored.first_name),
            last_name: self.last_name.applied_to(stored.last_name),
            email: self.email.applied_to(stored.email),
            phone: self.phone.applied_to(stored.phone),
            voice: self.voice.applied_to(stored.voice),
            language: self.language.applied_to(stored.language),
            groups: self.groups.clone().unwrap_or(stored.groups),
            attributes: self.attributes.clone().unwrap_or(stored.attributes),
            user_code_hash: stored.user_code_hash,
        }
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
    save(store, existing.as_ref(), profile).await
}

/// [`upsert`] when the stored profile was just read (`existing`): saves the read.
pub async fn save(
    store: &dyn Store,
    existing: Option<&UserProfile>,
    profile: &UserProfile,
) -> Result<(), AdapterError> {
    let mut profile = profile.clone();
    if profile.user_code_hash.is_none() {
        profile.user_code_hash = existing
            .as_ref()
            .and_then(|existing| existing.user_code_hash.clone());
    }
    if existing == Some(&profile) {
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

/// The kind of login a hint is (`username`, `email`, `phone`) and its normalised form;
/// `None` for a hint no profile can carry.
fn login_of(hint: &str) -> Option<(&'static str, String)> {
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
    (!normalised.is_empty() && normalised.len() <= MAX_FIELD_LEN).then_some((kind, normalised))
}

/// Whether `profile` carries `hint` as its username, email or phone.
pub fn answers_to(profile: &UserProfile, hint: &str) -> bool {
    login_of(hint).is_some_and(|login| logins(profile).contains(&login))
}

/// A user with what flows read of them together: their mobile devices' ids, their default
/// device and their passcode devices. All of it lives on the user's slot (`{u:<userId>}`),
/// so it is one read; the mobile devices' own records live on theirs
/// ([`crate::device::listed`] reads them, one read each).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserWithDevices {
    /// The profile.
    pub profile: UserProfile,
    /// The ids in the user's device set, in no particular order. A set may name a device
    /// that is gone or no longer serves the user: the device records decide.
    pub device_ids: Vec<DeviceId>,
    /// The device the user chose as default (their primary), if any.
    pub default_device: Option<DeviceId>,
    /// Their passcode devices, oldest first; empty when the read skipped them.
    pub passcode_devices: Vec<OtpDevice>,
}

/// Whether a read of a user's devices includes their passcode devices: CIBA reaches
/// mobile devices only, and a key read inside a script still counts as a Redis command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Passcodes {
    /// Read them too.
    Read,
    /// Leave them out (`passcode_devices` is empty).
    Skip,
}

/// Reads a user's profile, device set, default device and (unless skipped) passcode
/// devices in one atomic step; `None` when there is no such profile. The records keep
/// their formats: they are the ones [`find`], [`crate::device::list_for_user`],
/// [`crate::device::default_for_user`] and [`crate::otp_device::list`] read.
pub async fn find_with_devices(
    store: &dyn Store,
    id: &UserId,
    passcodes: Passcodes,
) -> Result<Option<UserWithDevices>, AdapterError> {
    let (profile_key, default_key) = (keys::user(id), keys::default_device(id));
    let passcodes_key = keys::otp_devices(id);
    let mut records = vec![profile_key.as_str(), default_key.as_str()];
    if passcodes == Passcodes::Read {
        records.push(&passcodes_key);
    }
    let read = store.snapshot(&records, &[&keys::user_devices(id)]).await?;
    let mut answers = read.records.into_iter();
    let (Some(profile), Some(default_device), Ok([device_ids])) = (
        answers.next(),
        answers.next(),
        <[_; 1]>::try_from(read.indexes),
    ) else {
        return Err(AdapterError::internal("a snapshot answered other keys"));
    };
    let passcode_devices = answers.next().flatten();
    let Some(profile) = profile else {
        return Ok(None);
    };
    Ok(Some(UserWithDevices {
        profile: serde_json::from_slice(&profile.value).map_err(AdapterError::internal)?,
        device_ids: device_ids
            .iter()
            .filter_map(|id| DeviceId::parse(id))
            .collect(),
        default_device: default_device.and_then(crate::device::default_from),
        passcode_devices: match passcode_devices {
            Some(record) => crate::otp_device::decode(&record)?,
            None => Vec::new(),
        },
    }))
}

/// Finds a user by username, email or phone, with what [`find_with_devices`] reads: the
/// hint's index, then the user's slot in one read. The index may be stale after a change,
/// so the profile found must still carry the identifier.
pub async fn find_by_login_with_devices(
    store: &dyn Store,
    hint: &str,
    passcodes: Passcodes,
) -> Result<Option<UserWithDevices>, AdapterError> {
    let Some((kind, normalised)) = login_of(hint) else {
        return Ok(None);
    };
    let Some(id) = login_owner(store, kind, &normalised).await? else {
        return Ok(None);
    };
    Ok(find_with_devices(store, &id, passcodes)
        .await?
        .filter(|user| logins(&user.profile).contains(&(kind, normalised.clone()))))
}

/// The user a login index entry names, if any.
async fn login_owner(
    store: &dyn Store,
    kind: &str,
    normalised: &str,
) -> Result<Option<UserId>, AdapterError> {
    Ok(store
        .get(&keys::login(kind, normalised))
        .await?
        .and_then(|record| String::from_utf8(record.value).ok())
        .and_then(|id| UserId::parse(&id).ok()))
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

#[cfg(test)]
mod tests {
    use super::*;

    fn stored() -> UserProfile {
        UserProfile {
            id: UserId::parse("alice").unwrap(),
            username: "alice".to_owned(),
            first_name: Some("Alice".to_owned()),
            last_name: None,
            email: Some("alice@example.com".to_owned()),
            phone: Some("+15555550100".to_owned()),
            voice: Some("+15555550101".to_owned()),
            language: Some("de".to_owned()),
            groups: vec!["staff".to_owned()],
            attributes: BTreeMap::new(),
            user_code_hash: Some("hash".to_owned()),
        }
    }

    #[test]
    fn absent_keeps_null_or_empty_clears_a_value_sets() {
        let update = ProfileUpdate {
            id: UserId::parse("alice").unwrap(),
            username: "alice".to_owned(),
            first_name: Change::from_input(None),
            last_name: Change::from_input(Some(Some("Liddell".to_owned()))),
            email: Change::from_input(None),
            phone: Change::from_input(Some(None)),
            voice: Change::from_input(Some(Some(" ".to_owned()))),
            language: Change::from_input(None),
            groups: None,
            attributes: None,
        };
        let merged = update.merged_into(Some(stored()));
        assert_eq!(merged.first_name.as_deref(), Some("Alice"));
        assert_eq!(merged.last_name.as_deref(), Some("Liddell"));
        assert_eq!(merged.email.as_deref(), Some("alice@example.com"));
        assert_eq!(merged.phone, None);
        assert_eq!(merged.voice, None);
        assert_eq!(merged.language.as_deref(), Some("de"));
        assert_eq!(merged.groups, ["staff"]);
        assert_eq!(merged.user_code_hash.as_deref(), Some("hash"));
        let fresh = update.merged_into(None);
        assert_eq!(fresh.email, None);
        assert_eq!(fresh.last_name.as_deref(), Some("Liddell"));
    }
}
