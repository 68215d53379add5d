//! What the tokens say and what introspection answers, from the authentication and the
//! time alone: no store, no keys, no clock read, so every rule here is unit-tested.

use assent_core::flow::ApprovalMethod;
use assent_core::oauth::refresh::RefreshGrant;
use assent_core::user::{UserId, UserProfile};
use assent_proto::ciba::{
    AccessTokenClaims, IdTokenClaims, IntrospectedType, Introspection, ProfileClaims,
};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

/// The authentication behind a set of tokens.
pub struct Authentication<'a> {
    /// The user.
    pub subject: &'a UserId,
    /// Scopes granted.
    pub scopes: &'a [String],
    /// When the person approved (seconds since the epoch).
    pub auth_time: u64,
    /// How the person approved (`amr` and `acr` follow from it).
    pub method: ApprovalMethod,
    /// Push mode binds the ID token to the request and the tokens (CIBA §10.3.1).
    pub push_auth_req_id: Option<&'a str>,
    /// When a refresh session started by this authentication ends (set on refresh).
    pub session_ends_at: Option<u64>,
    /// The refresh token family this authentication continues (set on refresh).
    pub refresh_family: Option<&'a str>,
    /// The user's profile when the caller has it already (a CIBA request keeps it).
    pub profile: Option<&'a UserProfile>,
}

impl<'a> Authentication<'a> {
    /// The authentication a refresh token stands for: its session's end goes with it.
    pub fn of_refresh(grant: &'a RefreshGrant) -> Self {
        Self {
            subject: &grant.subject,
            scopes: &grant.scopes,
            auth_time: grant.auth_time,
            method: grant.method,
            push_auth_req_id: None,
            session_ends_at: Some(grant.expires_at),
            refresh_family: grant.family.as_deref(),
            profile: None,
        }
    }

    fn grants(&self, scope: &str) -> bool {
        self.scopes.iter().any(|granted| granted == scope)
    }

    fn amr(&self) -> Vec<String> {
        self.method
            .amr()
            .iter()
            .map(|&amr| amr.to_owned())
            .collect()
    }
}

/// Who issues, to whom, when.
#[derive(Clone, Copy)]
pub struct Issuance<'a> {
    /// The issuer identifier.
    pub issuer: &'a str,
    /// The client the tokens are for.
    pub client_id: &'a str,
    /// Seconds since the epoch.
    pub now: u64,
}

/// Left half of the SHA-256 of a token, base64url: `at_hash` / `rt_hash` for RS256,
/// PS256 and ES256 alike.
pub fn half_hash(token: &str) -> String {
    let digest = Sha256::digest(token.as_bytes());
    URL_SAFE_NO_PAD.encode(&digest[..16])
}

/// The access token's claims, living `lifetime` seconds, with the id `jti`.
pub fn access_token(
    at: Issuance<'_>,
    auth: &Authentication<'_>,
    lifetime: u64,
    jti: String,
) -> AccessTokenClaims {
    AccessTokenClaims {
        iss: at.issuer.to_owned(),
        sub: auth.subject.as_str().to_owned(),
        aud: at.issuer.to_owned(),
        client_id: at.client_id.to_owned(),
        iat: at.now,
        exp: at.now + lifetime,
        jti,
        scope: auth.scopes.join(" "),
        auth_time: auth.auth_time,
        acr: auth.method.acr().map(str::to_owned),
        amr: auth.amr(),
    }
}

/// What a new refresh token stands for, when `offline_access` was granted: a first one
/// lasts `lifetime` seconds, a rotated one ends with the session it continues.
pub fn refresh_grant(
    at: Issuance<'_>,
    auth: &Authentication<'_>,
    lifetime: u64,
) -> Option<RefreshGrant> {
    auth.grants("offline_access").then(|| RefreshGrant {
        client_id: at.client_id.to_owned(),
        subject: auth.subject.clone(),
        scopes: auth.scopes.to_vec(),
        auth_time: auth.auth_time,
        method: auth.method,
        expires_at: auth.session_ends_at.unwrap_or(at.now + lifetime),
        family: auth.refresh_family.map(str::to_owned),
    })
}

/// Whether the scopes release any claim of the user's profile.
pub fn wants_profile(scopes: &[String]) -> bool {
    scopes
        .iter()
        .any(|scope| matches!(scope.as_str(), "profile" | "email" | "phone"))
}

/// The standard claims the scopes ask for (OIDC Core §5.4).
pub fn profile(user: &UserProfile, scopes: &[String]) -> ProfileClaims {
    let wants = |scope: &str| scopes.iter().any(|granted| granted == scope);
    let mut claims = ProfileClaims::default();
    if wants("profile") {
        claims.preferred_username = Some(user.username.clone());
        claims.given_name = user.first_name.clone();
        claims.family_name = user.last_name.clone();
    }
    if wants("email") {
        claims.email = user.email.clone();
    }
    if wants("phone") {
        claims.phone_number = user.phone.clone();
    }
    claims
}

/// The ID token's claims, living `lifetime` seconds, bound to its access token (and in
/// push mode to the request and the refresh token).
pub fn id_token(
    at: Issuance<'_>,
    auth: &Authentication<'_>,
    lifetime: u64,
    access_token: &str,
    refresh_token: Option<&str>,
    profile: ProfileClaims,
) -> IdTokenClaims {
    let push = auth.push_auth_req_id;
    IdTokenClaims {
        iss: at.issuer.to_owned(),
        sub: auth.subject.as_str().to_owned(),
        aud: at.client_id.to_owned(),
        iat: at.now,
        exp: at.now + lifetime,
        auth_time: auth.auth_time,
        amr: auth.amr(),
        acr: auth.method.acr().map(str::to_owned),
        at_hash: half_hash(access_token),
        auth_req_id: push.map(str::to_owned),
        rt_hash: push.and(refresh_token).map(half_hash),
        profile,
    }
}

/// Introspection of a verified access token (`typ` `at+jwt`) by `client_id` at `now`:
/// active only for the client it was issued to, until it expires.
pub fn introspect_access(claims: AccessTokenClaims, client_id: &str, now: u64) -> Introspection {
    if claims.client_id != client_id || claims.exp <= now {
        return Introspection::inactive();
    }
    Introspection {
        active: true,
        token_type: Some(IntrospectedType::Bearer),
        client_id: Some(claims.client_id),
        sub: Some(claims.sub),
        scope: Some(claims.scope),
        iss: Some(claims.iss),
        aud: Some(claims.aud),
        iat: Some(claims.iat),
        exp: Some(claims.exp),
        jti: Some(claims.jti),
        auth_time: Some(claims.auth_time),
        acr: claims.acr,
        amr: Some(claims.amr),
    }
}

/// Introspection of a live refresh token of the asking client.
pub fn introspect_refresh(grant: RefreshGrant, issuer: &str) -> Introspection {
    Introspection {
        active: true,
        token_type: Some(IntrospectedType::RefreshToken),
        client_id: Some(grant.client_id),
        sub: Some(grant.subject.as_str().to_owned()),
        scope: Some(grant.scopes.join(" ")),
        iss: Some(issuer.to_owned()),
        exp: Some(grant.expires_at),
        ..Introspection::default()
    }
}
