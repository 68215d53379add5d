//! The MFA policy (seed 001): which methods a user may and must have, backups, codes
//! instead of pushes, push limits, device requirements, network rules and skipping MFA
//! after a recent one, and which device a sign-in goes to. Global in `[mfa]`, overridden
//! per user group in `[group_policies."<group>"]` and per application in
//! `[application_policies."<application id>"]` (the application's override wins over the
//! group's); resolved once at start-up.

use std::collections::BTreeMap;
use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

/// An authentication method, named as seed 001 names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Method {
    /// The mobile app: push, and its own one-time passcodes.
    PingidMobile,
    /// One-time passcodes by text message.
    Sms,
    /// One-time passcodes read out by a voice call.
    Voice,
    /// One-time passcodes by email.
    Email,
    /// An authenticator app (RFC 6238).
    Totp,
    /// A roaming FIDO2 security key (WebAuthn, USB/NFC/BLE): presence at least.
    SecurityKey,
    /// A platform authenticator (WebAuthn, built-in biometrics): user verification
    /// always.
    Platform,
    /// A YubiKey's OTP, validated by assent (imported by an operator).
    Yubikey,
    /// An OATH hardware token, HOTP or TOTP (imported by an operator).
    OathToken,
}

impl Method {
    /// Every method assent supports.
    pub const ALL: [Self; 9] = [
        Self::PingidMobile,
        Self::Sms,
        Self::Voice,
        Self::Email,
        Self::Totp,
        Self::SecurityKey,
        Self::Platform,
        Self::Yubikey,
        Self::OathToken,
    ];

    /// The methods allowed when the configuration names none: those that need no
    /// `[webauthn]` relying party.
    pub const DEFAULT_ALLOWED: [Self; 7] = [
        Self::PingidMobile,
        Self::Sms,
        Self::Voice,
        Self::Email,
        Self::Totp,
        Self::Yubikey,
        Self::OathToken,
    ];

    /// Whether devices of this method are hardware an operator imports: never set up by
    /// the person in a flow.
    pub fn is_imported(self) -> bool {
        matches!(self, Self::Yubikey | Self::OathToken)
    }

    /// The seed's name (`PINGID_MOBILE`, `SMS`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::PingidMobile => "PINGID_MOBILE",
            Self::Sms => "SMS",
            Self::Voice => "VOICE",
            Self::Email => "EMAIL",
            Self::Totp => "TOTP",
            Self::SecurityKey => "SECURITY_KEY",
            Self::Platform => "PLATFORM",
            Self::Yubikey => "YUBIKEY",
            Self::OathToken => "OATH_TOKEN",
        }
    }

    /// The device type PingFederate's widget shows for it.
    pub fn widget_type(self) -> &'static str {
        match self {
            Self::PingidMobile => "MOBILE",
            Self::Sms => "SMS",
            Self::Voice => "Voice",
            Self::Email => "Email",
            Self::Totp => "TOTP",
            Self::SecurityKey => "SECURITY_KEY",
            Self::Platform => "PLATFORM",
            Self::Yubikey => "YUBIKEY",
            Self::OathToken => "OATH_TOKEN",
        }
    }

    /// Parses a widget device type or a seed name, ignoring case.
    pub fn parse(raw: &str) -> Option<Self> {
        let raw = raw.to_ascii_uppercase();
        match raw.as_str() {
            "MOBILE" | "PINGID_MOBILE" => Some(Self::PingidMobile),
            "SMS" => Some(Self::Sms),
            "VOICE" => Some(Self::Voice),
            "EMAIL" => Some(Self::Email),
            "TOTP" => Some(Self::Totp),
            "SECURITY_KEY" => Some(Self::SecurityKey),
            "PLATFORM" => Some(Self::Platform),
            "YUBIKEY" => Some(Self::Yubikey),
            "OATH_TOKEN" => Some(Self::OathToken),
            _ => None,
        }
    }

    /// How a second factor by this method is named in results (`amr`/`acr` follow it).
    pub fn approval_name(self) -> &'static str {
        match self {
            Self::PingidMobile => "mobile_otp",
            Self::Sms => "sms",
            Self::Voice => "voice",
            Self::Email => "email",
            Self::Totp => "totp",
            Self::SecurityKey => "security_key",
            Self::Platform => "platform",
            Self::Yubikey => "yubikey",
            Self::OathToken => "oath_token",
        }
    }

    /// Whether it is a WebAuthn authenticator, which needs the `[webauthn]` relying party.
    pub fn is_webauthn(self) -> bool {
        matches!(self, Self::SecurityKey | Self::Platform)
    }

    /// Whether the authenticator must verify the person (PIN or biometrics), not only
    /// see them present: a platform authenticator is the phone or laptop itself, so
    /// presence alone proves nothing a thief lacks.
    pub fn requires_user_verification(self) -> bool {
        self == Self::Platform
    }

    /// Whether a code is sent to an address (rather than computed by the user's device).
    pub fn is_sent(self) -> bool {
        matches!(self, Self::Sms | Self::Voice | Self::Email)
    }
}

/// Which device a sign-in goes to (PingOne MFA policies' device selection).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeviceSelection {
    /// The user's primary device gets the push (or code) at once; the person sees the
    /// list only when they ask to change device, or when the primary cannot be used.
    #[default]
    DefaultDevice,
    /// The person picks whenever more than one device can be used.
    Prompt,
    /// The person always picks, even with a single device.
    AlwaysDisplay,
}

impl DeviceSelection {
    /// The device a sign-in goes to without asking, among the usable ones (oldest
    /// first), given the user's primary; `None`: the person picks.
    pub fn first_device<'a>(
        self,
        usable: &'a [crate::ids::DeviceId],
        primary: Option<&crate::ids::DeviceId>,
    ) -> Option<&'a crate::ids::DeviceId> {
        match (self, usable) {
            (Self::AlwaysDisplay, _) => None,
            (_, [only]) => Some(only),
            (Self::DefaultDevice, usable) => usable.iter().find(|id| Some(*id) == primary),
            (Self::Prompt, _) => None,
        }
    }
}

/// What a network rule does to a sign-in from its range.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NetworkAction {
    /// No second factor from here (a trusted office network).
    Bypass,
    /// Always a second factor from here, even within the skip-MFA window.
    Require,
    /// No sign-in from here at all.
    Deny,
}

/// One network rule: a CIDR range (IPv4 or IPv6) and its action.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkRule {
    /// The range, e.g. `10.0.0.0/8` or `2001:db8::/32`.
    pub cidr: IpNet,
    /// What a sign-in from it gets.
    pub action: NetworkAction,
}

/// The MFA policy of one application (or the global one).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MfaPolicy {
    /// Methods a user may authenticate with; devices of other methods are not offered.
    pub allowed_methods: Vec<Method>,
    /// Methods every user must have enrolled before a sign-in completes.
    pub mandatory_authentication_methods: Vec<Method>,
    /// `SMSBackup`: a code by SMS to the user's phone number when the device is unusable.
    pub sms_backup: bool,
    /// `phoneBackup`: a code by voice call to the user's voice number.
    pub phone_backup: bool,
    /// `emailBackup`: a code by email to the user's address.
    pub email_backup: bool,
    /// `useCode`: the person may type the app's one-time passcode instead of waiting.
    pub use_code: bool,
    /// `OTP Fallback`: when a push cannot be delivered or answered, the app's passcode
    /// (or a backup) is offered.
    pub otp_fallback: bool,
    /// Shown in the Authentication API and on the device.
    pub admin_message: Option<String>,
    /// Push notifications per user within `push_limit_window_secs` (CIBA requests count);
    /// 0: no limit. On by default (10).
    pub push_limit: u32,
    /// The window of `push_limit`.
    pub push_limit_window_secs: u64,
    /// Oldest accepted mobile OS version, by OS (`ios`, `android`).
    pub min_os_version: BTreeMap<String, String>,
    /// Network rules, first match wins; no match means a second factor is required.
    pub network_rules: Vec<NetworkRule>,
    /// Skip MFA when the same user completed it from the same IP (and client device)
    /// within this many seconds; 0: never.
    pub skip_mfa_within_secs: u64,
    /// The browser shows a number the person must pick on the device among three.
    pub number_matching: bool,
    /// Digits of a sent passcode.
    pub otp_length: u32,
    /// How long a sent passcode works.
    pub otp_ttl_secs: u64,
    /// Wrong passcodes before the authentication fails.
    pub otp_max_attempts: u32,
    /// Passcodes one flow may send (the first and the resends).
    pub otp_max_sends: u32,
    /// Minimum seconds between two sends.
    pub otp_resend_interval_secs: u64,
    /// Passcodes sent to one user within `otp_send_limit_window_secs`, across sign-ins
    /// (against SMS and call bombing); 0: no limit.
    pub otp_send_limit: u32,
    /// The window of `otp_send_limit`.
    pub otp_send_limit_window_secs: u64,
    /// Passcodes one user may try within `otp_attempt_window_secs`, across sign-ins
    /// (against guessing by starting many sign-ins); 0: no limit.
    pub otp_attempt_limit: u32,
    /// The window of `otp_attempt_limit`.
    pub otp_attempt_window_secs: u64,
    /// Which device a sign-in goes to: `default_device`, `prompt` or `always_display`.
    pub device_selection: DeviceSelection,
}

impl Default for MfaPolicy {
    fn default() -> Self {
        Self {
            allowed_methods: Method::DEFAULT_ALLOWED.to_vec(),
            mandatory_authentication_methods: Vec::new(),
            sms_backup: false,
            phone_backup: false,
            email_backup: false,
            use_code: false,
            otp_fallback: true,
            admin_message: None,
            // On by default against push bombing: a person approves far fewer than ten
            // sign-ins an hour.
            push_limit: 10,
            push_limit_window_secs: 3600,
            min_os_version: BTreeMap::new(),
            network_rules: Vec::new(),
            skip_mfa_within_secs: 0,
            number_matching: false,
            otp_length: 6,
            otp_ttl_secs: 300,
            otp_max_attempts: 3,
            otp_max_sends: 3,
            otp_resend_interval_secs: 30,
            otp_send_limit: 10,
            otp_send_limit_window_secs: 3600,
            otp_attempt_limit: 20,
            otp_attempt_window_secs: 900,
            device_selection: DeviceSelection::DefaultDevice,
        }
    }
}

/// The longest admin message.
const MAX_ADMIN_MESSAGE: usize = 512;

impl MfaPolicy {
    /// Checks values; the error names the key.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        if self.allowed_methods.is_empty() {
            return Err(("allowed_methods", "at least one method".to_owned()));
        }
        if let Some(missing) = self
            .mandatory_authentication_methods
            .iter()
            .find(|method| !self.allowed_methods.contains(method))
        {
            return Err((
                "mandatory_authentication_methods",
                format!("{} is mandatory but not allowed", missing.as_str()),
            ));
        }
        if let Some(message) = &self.admin_message
            && (message.len() > MAX_ADMIN_MESSAGE
                || message.chars().any(crate::params::is_deceptive))
        {
            return Err((
                "admin_message",
                format!("at most {MAX_ADMIN_MESSAGE} bytes of printable text"),
            ));
        }
        for (os, version) in &self.min_os_version {
            if !matches!(os.as_str(), "ios" | "android") {
                return Err(("min_os_version", "keys are `ios` and `android`".to_owned()));
            }
            if parse_version(version).is_none() {
                return Err((
                    "min_os_version",
                    format!("`{version}` is not a dotted version such as 16.4"),
                ));
            }
        }
        for (key, value, low, high) in [
            ("otp_length", u64::from(self.otp_length), 6, 10),
            ("otp_ttl_secs", self.otp_ttl_secs, 30, 3600),
            ("otp_max_attempts", u64::from(self.otp_max_attempts), 1, 10),
            ("otp_max_sends", u64::from(self.otp_max_sends), 1, 10),
            (
                "otp_resend_interval_secs",
                self.otp_resend_interval_secs,
                0,
                600,
            ),
            (
                "push_limit_window_secs",
                self.push_limit_window_secs,
                1,
                7 * 86_400,
            ),
            (
                "skip_mfa_within_secs",
                self.skip_mfa_within_secs,
                0,
                30 * 86_400,
            ),
            (
                "otp_send_limit_window_secs",
                self.otp_send_limit_window_secs,
                1,
                7 * 86_400,
            ),
            (
                "otp_attempt_window_secs",
                self.otp_attempt_window_secs,
                1,
                86_400,
            ),
        ] {
            if value < low || value > high {
                return Err((key, format!("between {low} and {high}")));
            }
        }
        Ok(())
    }

    /// What the network rules say about `ip` (first match), if any matches.
    pub fn network_action(&self, ip: Option<IpAddr>) -> Option<NetworkAction> {
        let ip = ip.map(canonical)?;
        self.network_rules
            .iter()
            .find(|rule| rule.cidr.contains(&ip))
            .map(|rule| rule.action)
    }

    /// Why a mobile device with this OS and version may not be used, if it may not.
    pub fn os_refusal(&self, os: &str, version: &str) -> Option<String> {
        let family = os_family(os)?;
        let minimum = self.min_os_version.get(family)?;
        let too_old = match (parse_version(version), parse_version(minimum)) {
            (Some(have), Some(need)) => have < need,
            // A version that cannot be read cannot be shown to be recent enough.
            _ => true,
        };
        too_old.then(|| format!("the device runs {os} {version}; {minimum} or later is required"))
    }

    /// Whether `method` may be used.
    pub fn allows(&self, method: Method) -> bool {
        self.allowed_methods.contains(&method)
    }
}

/// An IPv4-mapped IPv6 address (`::ffff:10.0.0.1`) is the IPv4 address it carries, so
/// that IPv4 rules apply to dual-stack listeners too.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

fn os_family(os: &str) -> Option<&'static str> {
    let os = os.to_ascii_lowercase();
    if os.contains("ios") || os.contains("iphone") || os.contains("ipados") {
        Some("ios")
    } else if os.contains("android") {
        Some("android")
    } else {
        None
    }
}

/// `16.4.1` → `[16, 4, 1]`, compared component-wise (`16.10` is newer than `16.9`).
fn parse_version(raw: &str) -> Option<Vec<u32>> {
    let parts: Option<Vec<u32>> = raw
        .trim()
        .split('.')
        .map(|part| part.parse().ok())
        .collect();
    let mut parts = parts.filter(|parts| !parts.is_empty() && parts.len() <= 4)?;
    while parts.len() > 1 && parts.last() == Some(&0) {
        parts.pop();
    }
    Some(parts)
}

/// Policy overrides by name (a user group or an application), as configured: each key
/// of [`MfaPolicy`] that differs from the policy below it.
pub type Overrides = BTreeMap<String, serde_json::Map<String, serde_json::Value>>;

/// The global policy, the per-group and per-application ones, and each group's combined
/// with each application's: every one complete (overrides merged), so that a sign-in
/// merges nothing.
#[derive(Clone, Debug, Default)]
pub struct Policies {
    global: MfaPolicy,
    groups: BTreeMap<String, MfaPolicy>,
    applications: BTreeMap<String, MfaPolicy>,
    /// By (group, application): the group's overrides, then the application's.
    combined: BTreeMap<(String, String), MfaPolicy>,
}

/// `base` with each layer's overrides applied in order, validated; the error names the
/// layer (`group_policies.<group>`, `application_policies.<id>`) and the key.
fn layered(
    base: &serde_json::Map<String, serde_json::Value>,
    layers: &[(&str, &serde_json::Map<String, serde_json::Value>)],
) -> Result<MfaPolicy, (String, String)> {
    let mut merged = base.clone();
    for (_, changes) in layers {
        merged.extend((*changes).clone());
    }
    let name = layers
        .iter()
        .map(|(name, _)| *name)
        .collect::<Vec<_>>()
        .join(" + ");
    let policy: MfaPolicy = serde_path_to_error::deserialize(serde_json::Value::Object(merged))
        .map_err(|error| {
            // The key at fault (of the wrong type, or unknown) is named in the layer that
            // set it: the last one that has it.
            let key = error.path().to_string();
            let field = key.split('.').next().unwrap_or_default();
            let layer = layers
                .iter()
                .rev()
                .find(|(_, changes)| changes.contains_key(field))
                .map(|(layer, _)| *layer);
            let at = match layer {
                Some(layer) if key != "." => format!("{layer}.{key}"),
                _ => name.clone(),
            };
            (at, error.into_inner().to_string())
        })?;
    policy
        .validate()
        .map_err(|(key, reason)| (format!("{name}.{key}"), reason))?;
    Ok(policy)
}

impl Policies {
    /// Every resolved policy: the global one, each group's, each application's, and
    /// each group's with each application's.
    pub fn all(&self) -> impl Iterator<Item = &MfaPolicy> {
        std::iter::once(&self.global)
            .chain(self.groups.values())
            .chain(self.applications.values())
            .chain(self.combined.values())
    }

    /// Merges each group's and each application's overrides onto the global policy, and
    /// each application's onto each group's; the error names the key
    /// (`group_policies.<group>.<key>`, `application_policies.<id>.<key>`).
    pub fn resolve(
        global: &MfaPolicy,
        groups: &Overrides,
        applications: &Overrides,
    ) -> Result<Self, (String, String)> {
        global
            .validate()
            .map_err(|(key, reason)| (format!("mfa.{key}"), reason))?;
        let base = match serde_json::to_value(global) {
            Ok(serde_json::Value::Object(base)) => base,
            _ => return Err(("mfa".to_owned(), "cannot be represented".to_owned())),
        };
        let mut policies = Self {
            global: global.clone(),
            ..Self::default()
        };
        for (group, group_changes) in groups {
            let group_name = format!("group_policies.{group}");
            policies.groups.insert(
                group.clone(),
                layered(&base, &[(&group_name, group_changes)])?,
            );
            for (id, changes) in applications {
                let application = format!("application_policies.{id}");
                policies.combined.insert(
                    (group.clone(), id.clone()),
                    layered(
                        &base,
                        &[(&group_name, group_changes), (&application, changes)],
                    )?,
                );
            }
        }
        for (id, changes) in applications {
            let application = format!("application_policies.{id}");
            policies
                .applications
                .insert(id.clone(), layered(&base, &[(&application, changes)])?);
        }
        Ok(policies)
    }

    /// The group whose policy applies to a user in `groups`: the first listed that has
    /// one.
    pub fn group_of<'a>(&self, groups: &'a [String]) -> Option<&'a str> {
        groups
            .iter()
            .find(|group| self.groups.contains_key(*group))
            .map(String::as_str)
    }

    /// The policy for an application (by the federation server's id), else the global one.
    pub fn for_application(&self, id: Option<&str>) -> &MfaPolicy {
        self.for_sign_in(None, id)
    }

    /// The policy for a sign-in of a user whose policy group is `group` (see
    /// [`Policies::group_of`]) to an application: the global policy, with the group's
    /// overrides, with the application's on top.
    pub fn for_sign_in(&self, group: Option<&str>, application: Option<&str>) -> &MfaPolicy {
        let group = group.filter(|group| self.groups.contains_key(*group));
        let application = application.filter(|id| self.applications.contains_key(*id));
        match (group, application) {
            (Some(group), Some(id)) => self
                .combined
                .get(&(group.to_owned(), id.to_owned()))
                .unwrap_or(&self.global),
            (Some(group), None) => self.groups.get(group).unwrap_or(&self.global),
            (None, Some(id)) => self.applications.get(id).unwrap_or(&self.global),
            (None, None) => &self.global,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn webauthn_methods_parse_and_platform_must_verify_the_person() {
        assert_eq!(Method::parse("SECURITY_KEY"), Some(Method::SecurityKey));
        assert_eq!(Method::parse("platform"), Some(Method::Platform));
        assert!(Method::Platform.requires_user_verification());
        assert!(!Method::SecurityKey.requires_user_verification());
        assert!(
            !MfaPolicy::default()
                .allowed_methods
                .iter()
                .any(|method| method.is_webauthn()),
            "allowed by default, they would need a relying party nobody configured"
        );
    }

    fn rules(rules: &[(&str, NetworkAction)]) -> MfaPolicy {
        MfaPolicy {
            network_rules: rules
                .iter()
                .map(|(cidr, action)| NetworkRule {
                    cidr: cidr.parse().unwrap(),
                    action: *action,
                })
                .collect(),
            ..MfaPolicy::default()
        }
    }

    #[test]
    fn network_rules_match_first_and_cover_ipv6() {
        let policy = rules(&[
            ("10.1.0.0/16", NetworkAction::Deny),
            ("10.0.0.0/8", NetworkAction::Bypass),
            ("2001:db8::/32", NetworkAction::Require),
        ]);
        let at = |ip: &str| policy.network_action(Some(ip.parse().unwrap()));
        assert_eq!(at("10.1.2.3"), Some(NetworkAction::Deny));
        assert_eq!(at("10.2.2.3"), Some(NetworkAction::Bypass));
        assert_eq!(at("::ffff:10.2.2.3"), Some(NetworkAction::Bypass));
        assert_eq!(at("2001:db8:1::5"), Some(NetworkAction::Require));
        assert_eq!(at("2001:db9::5"), None);
        assert_eq!(policy.network_action(None), None);
    }

    #[test]
    fn os_versions_compare_numerically() {
        let policy = MfaPolicy {
            min_os_version: BTreeMap::from([("ios".to_owned(), "16.4".to_owned())]),
            ..MfaPolicy::default()
        };
        assert!(policy.os_refusal("iOS", "16.10").is_none());
        assert!(policy.os_refusal("iOS", "17").is_none());
        assert!(policy.os_refusal("iOS", "16.4.0").is_none());
        assert!(policy.os_refusal("iOS", "16.3.9").is_some());
        assert!(policy.os_refusal("iOS", "banana").is_some());
        assert!(
            policy.os_refusal("Android", "4").is_none(),
            "no Android minimum"
        );
    }

    #[test]
    fn overrides_merge_onto_the_global_policy() {
        let global = MfaPolicy {
            use_code: true,
            ..MfaPolicy::default()
        };
        let overrides = BTreeMap::from([(
            "payroll".to_owned(),
            serde_json::from_str(r#"{ "number_matching": true }"#).unwrap(),
        )]);
        let policies = Policies::resolve(&global, &Overrides::new(), &overrides).unwrap();
        let payroll = policies.for_application(Some("payroll"));
        assert!(payroll.use_code && payroll.number_matching);
        assert!(!policies.for_application(Some("other")).number_matching);
        let bad = BTreeMap::from([(
            "x".to_owned(),
            serde_json::from_str(r#"{ "use_codes": true }"#).unwrap(),
        )]);
        let (key, _) = Policies::resolve(&global, &Overrides::new(), &bad).unwrap_err();
        assert_eq!(key, "application_policies.x.use_codes");
    }

    #[test]
    fn a_value_of_the_wrong_type_is_named_by_its_full_key() {
        let global = MfaPolicy::default();
        let wrong =
            |text: &str| Overrides::from([("x".to_owned(), serde_json::from_str(text).unwrap())]);
        let (key, reason) = Policies::resolve(
            &global,
            &Overrides::new(),
            &wrong(r#"{ "sms_backup": "" }"#),
        )
        .unwrap_err();
        assert_eq!(key, "application_policies.x.sms_backup", "{reason}");
        // Combined with a group's, the key is named in the layer that set it.
        let (key, _) = Policies::resolve(
            &global,
            &wrong(r#"{ "use_code": true }"#),
            &wrong(r#"{ "otp_length": [] }"#),
        )
        .unwrap_err();
        assert_eq!(key, "application_policies.x.otp_length");
    }

    #[test]
    fn a_group_override_lies_between_the_global_and_the_application_policy() {
        let global = MfaPolicy::default();
        let json = |raw: &str| serde_json::from_str(raw).unwrap();
        let groups = Overrides::from([
            (
                "tellers".to_owned(),
                json(r#"{ "device_selection": "always_display", "use_code": true }"#),
            ),
            (
                "contractors".to_owned(),
                json(r#"{ "number_matching": true }"#),
            ),
        ]);
        let applications = Overrides::from([(
            "payroll".to_owned(),
            json(r#"{ "device_selection": "prompt" }"#),
        )]);
        let policies = Policies::resolve(&global, &groups, &applications).unwrap();
        let groups_of = |names: &[&str]| names.iter().map(|n| n.to_string()).collect::<Vec<_>>();

        let tellers = groups_of(&["staff", "tellers", "contractors"]);
        let group = policies.group_of(&tellers);
        assert_eq!(
            group,
            Some("tellers"),
            "the first listed group with a policy"
        );
        let teller = policies.for_sign_in(group, Some("web"));
        assert_eq!(teller.device_selection, DeviceSelection::AlwaysDisplay);
        assert!(teller.use_code && !teller.number_matching);

        let payroll = policies.for_sign_in(group, Some("payroll"));
        assert_eq!(
            payroll.device_selection,
            DeviceSelection::Prompt,
            "the application wins"
        );
        assert!(payroll.use_code, "the group's other overrides stay");

        let nobody = policies.for_sign_in(policies.group_of(&groups_of(&["staff"])), None);
        assert_eq!(nobody, &global);
        assert_eq!(
            policies.for_application(Some("payroll")).device_selection,
            DeviceSelection::Prompt
        );

        let bad = Overrides::from([("x".to_owned(), json(r#"{ "otp_length": 2 }"#))]);
        let (key, _) = Policies::resolve(&global, &bad, &Overrides::new()).unwrap_err();
        assert_eq!(key, "group_policies.x.otp_length");
    }

    #[test]
    fn device_selection_goes_to_the_primary_or_asks() {
        let ids: Vec<crate::ids::DeviceId> =
            (0..2).map(|_| crate::ids::DeviceId::generate()).collect();
        let (old, new) = (&ids[0], &ids[1]);
        let one = std::slice::from_ref(old);
        use DeviceSelection::*;
        assert_eq!(DefaultDevice.first_device(&ids, Some(new)), Some(new));
        assert_eq!(
            DefaultDevice.first_device(&ids, None),
            None,
            "no primary: ask"
        );
        assert_eq!(
            DefaultDevice.first_device(one, Some(new)),
            Some(old),
            "the only one"
        );
        assert_eq!(Prompt.first_device(&ids, Some(new)), None);
        assert_eq!(Prompt.first_device(one, None), Some(old));
        assert_eq!(AlwaysDisplay.first_device(one, Some(old)), None);
        assert_eq!(AlwaysDisplay.first_device(&[], None), None);
    }
}
