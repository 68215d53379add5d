//! The token logic without a server: the claims each approval method yields, expiry,
//! client binding, refresh rotation and introspection. Time moves on a manual clock.

use std::time::Duration;

use assent_core::clock::Clock;
use assent_core::flow::{ACR_MOBILE_PUSH, ACR_OTP, ApprovalMethod};
use assent_core::oauth::refresh::RefreshGrant;
use assent_core::user::{UserId, UserProfile};
use assent_proto::ciba::{
    AccessTokenClaims, ErrorCode, IdTokenClaims, IntrospectedType, Introspection, TokenResponse,
};
use serde::de::DeserializeOwned;

use super::claims::{self, Authentication, Issuance};
use super::not_yet;
use crate::Provider;
use crate::test_support::{ISSUER, START, form, provider, provider_with};
use assent_core::flow::ciba::Grant;

fn alice() -> UserId {
    UserId::parse("alice").expect("valid user")
}

fn scopes(scopes: &[&str]) -> Vec<String> {
    scopes.iter().map(|&scope| scope.to_owned()).collect()
}

fn auth<'a>(
    subject: &'a UserId,
    scopes: &'a [String],
    method: ApprovalMethod,
) -> Authentication<'a> {
    Authentication {
        subject,
        scopes,
        auth_time: START - 7,
        method,
        push_auth_req_id: None,
        session_ends_at: None,
        refresh_family: None,
        profile: None,
    }
}

const AT: Issuance<'static> = Issuance {
    issuer: ISSUER,
    client_id: "rp",
    now: START,
};

#[test]
fn amr_and_acr_follow_the_approval_method() {
    let (user, granted) = (alice(), scopes(&["openid"]));
    let cases = [
        (
            ApprovalMethod::Push,
            &["mfa", "swk", "user"][..],
            Some(ACR_MOBILE_PUSH),
        ),
        (
            ApprovalMethod::MobileOtp,
            &["mfa", "swk", "otp"][..],
            Some(ACR_OTP),
        ),
        (
            ApprovalMethod::Sms,
            &["mfa", "sms", "otp"][..],
            Some(ACR_OTP),
        ),
        (ApprovalMethod::Totp, &["mfa", "otp"][..], Some(ACR_OTP)),
        (ApprovalMethod::Registration, &["swk"][..], None),
    ];
    for (method, amr, acr) in cases {
        let auth = auth(&user, &granted, method);
        let access = claims::access_token(AT, &auth, 300, "jti".into());
        let id = claims::id_token(AT, &auth, 600, "at", None, Default::default());
        assert_eq!(access.amr, amr, "{method:?}");
        assert_eq!(id.amr, amr, "{method:?}");
        assert_eq!(access.acr.as_deref(), acr, "{method:?}");
        assert_eq!(id.acr.as_deref(), acr, "{method:?}");
    }
}

#[test]
fn an_approval_without_acr_leaves_it_out_of_the_id_token_only() {
    let (user, granted) = (alice(), scopes(&["openid"]));
    let auth = auth(&user, &granted, ApprovalMethod::Registration);
    let access = serde_json::to_value(claims::access_token(AT, &auth, 300, "j".into()))
        .expect("access claims");
    let id = serde_json::to_value(claims::id_token(
        AT,
        &auth,
        600,
        "at",
        None,
        Default::default(),
    ))
    .expect("id claims");
    assert_eq!(access.get("acr"), Some(&serde_json::Value::Null));
    assert_eq!(id.get("acr"), None);
}

#[test]
fn tokens_are_bound_to_the_client_and_expire_after_their_lifetime() {
    let (user, granted) = (alice(), scopes(&["openid", "email"]));
    let auth = auth(&user, &granted, ApprovalMethod::Push);
    let access = claims::access_token(AT, &auth, 300, "jti-1".into());
    assert_eq!(
        access,
        AccessTokenClaims {
            iss: ISSUER.into(),
            sub: "alice".into(),
            aud: ISSUER.into(),
            client_id: "rp".into(),
            iat: START,
            exp: START + 300,
            jti: "jti-1".into(),
            scope: "openid email".into(),
            auth_time: START - 7,
            acr: Some(ACR_MOBILE_PUSH.into()),
            amr: scopes(&["mfa", "swk", "user"]),
        }
    );
    let id = claims::id_token(AT, &auth, 600, "the-access-token", None, Default::default());
    assert_eq!((id.iss.as_str(), id.aud.as_str()), (ISSUER, "rp"));
    assert_eq!(
        (id.iat, id.exp, id.auth_time),
        (START, START + 600, START - 7)
    );
    assert_eq!(id.at_hash, claims::half_hash("the-access-token"));
    assert_eq!((id.auth_req_id, id.rt_hash), (None, None));
}

#[test]
fn push_mode_binds_the_id_token_to_the_request_and_the_refresh_token() {
    let (user, granted) = (alice(), scopes(&["openid", "offline_access"]));
    let mut auth = auth(&user, &granted, ApprovalMethod::Push);
    auth.push_auth_req_id = Some("req-1");
    let id = claims::id_token(AT, &auth, 600, "at", Some("rt"), Default::default());
    assert_eq!(id.auth_req_id.as_deref(), Some("req-1"));
    assert_eq!(id.rt_hash, Some(claims::half_hash("rt")));
    let without_refresh = claims::id_token(AT, &auth, 600, "at", None, Default::default());
    assert_eq!(without_refresh.rt_hash, None);
}

#[test]
fn half_hashes_are_the_left_half_of_sha256_in_base64url() {
    // SHA-256("abc") = ba7816bf8f01cfea414140de5dae2223 b00361a3...
    assert_eq!(claims::half_hash("abc"), "ungWv48Bz-pBQUDeXa4iIw");
}

#[test]
fn a_refresh_token_needs_offline_access_and_never_outlives_its_session() {
    let user = alice();
    let online = scopes(&["openid"]);
    assert_eq!(
        claims::refresh_grant(AT, &auth(&user, &online, ApprovalMethod::Push), 3600),
        None
    );
    let offline = scopes(&["openid", "offline_access"]);
    let first = claims::refresh_grant(AT, &auth(&user, &offline, ApprovalMethod::Sms), 3600)
        .expect("offline access");
    assert_eq!(
        first,
        RefreshGrant {
            client_id: "rp".into(),
            subject: user.clone(),
            scopes: offline.clone(),
            auth_time: START - 7,
            method: ApprovalMethod::Sms,
            expires_at: START + 3600,
            family: None,
        }
    );
    // Rotated later, it keeps the session's end.
    let later = Issuance {
        now: START + 3000,
        ..AT
    };
    let rotated = claims::refresh_grant(later, &Authentication::of_refresh(&first), 3600)
        .expect("offline access");
    assert_eq!(rotated, first);
}

#[test]
fn profile_claims_follow_the_scopes() {
    let profile = UserProfile {
        id: alice(),
        username: "alice".into(),
        first_name: Some("Alice".into()),
        last_name: None,
        email: Some("alice@example.com".into()),
        phone: Some("+15555550101".into()),
        voice: None,
        language: None,
        groups: Vec::new(),
        attributes: Default::default(),
        user_code_hash: None,
    };
    assert!(!claims::wants_profile(&scopes(&[
        "openid",
        "offline_access"
    ])));
    let email = claims::profile(&profile, &scopes(&["openid", "email"]));
    assert_eq!(email.email.as_deref(), Some("alice@example.com"));
    assert_eq!((email.preferred_username, email.phone_number), (None, None));
    let named = claims::profile(&profile, &scopes(&["profile", "phone"]));
    assert_eq!(named.preferred_username.as_deref(), Some("alice"));
    assert_eq!(named.given_name.as_deref(), Some("Alice"));
    assert_eq!(named.family_name, None);
    assert_eq!(named.phone_number.as_deref(), Some("+15555550101"));
    assert_eq!(named.email, None);
}

#[test]
fn an_access_token_is_active_for_its_client_until_it_expires() {
    let (user, granted) = (alice(), scopes(&["openid"]));
    let access = claims::access_token(
        AT,
        &auth(&user, &granted, ApprovalMethod::Push),
        300,
        "j".into(),
    );
    let active = claims::introspect_access(access.clone(), "rp", START + 299);
    assert!(active.active);
    assert_eq!(active.token_type, Some(IntrospectedType::Bearer));
    assert_eq!(active.sub.as_deref(), Some("alice"));
    assert_eq!(active.exp, Some(START + 300));
    assert_eq!(
        claims::introspect_access(access.clone(), "other", START),
        Introspection::inactive()
    );
    assert_eq!(
        claims::introspect_access(access, "rp", START + 300),
        Introspection::inactive()
    );
}

#[test]
fn grants_without_tokens_have_their_ciba_errors() {
    let code = |grant| not_yet(grant).map(|error| error.code);
    assert_eq!(code(Grant::Pending), Some(ErrorCode::AuthorizationPending));
    assert_eq!(code(Grant::SlowDown), Some(ErrorCode::SlowDown));
    assert_eq!(code(Grant::Expired), Some(ErrorCode::ExpiredToken));
    assert_eq!(code(Grant::Denied), Some(ErrorCode::AccessDenied));
    assert_eq!(code(Grant::Approved), None);
}

/// The claims of a token this provider signed.
async fn decode<T: DeserializeOwned>(provider: &Provider, token: &str) -> T {
    let keys = provider.keys.keys().await;
    let claims = crate::jose::verify(token, &keys.jwks()).expect("signed by the provider");
    serde_json::from_value(claims.claims_set().clone().into()).expect("claims")
}

async fn refresh(
    provider: &Provider,
    client: &str,
    token: &str,
) -> Result<TokenResponse, ErrorCode> {
    let form = form(
        client,
        &[("grant_type", "refresh_token"), ("refresh_token", token)],
    );
    provider
        .token(None, &form)
        .await
        .map_err(|error| error.code)
}

async fn introspect(provider: &Provider, client: &str, token: &str) -> Introspection {
    provider
        .introspect(None, &form(client, &[("token", token)]))
        .await
        .expect("introspection")
}

#[tokio::test]
async fn minted_tokens_are_signed_and_say_who_approved_how() {
    let (provider, _clock) = provider().await;
    let client = provider.client("rp").expect("client");
    let (user, granted) = (alice(), scopes(&["openid", "profile", "offline_access"]));
    let tokens = provider
        .mint(client, &auth(&user, &granted, ApprovalMethod::MobileOtp))
        .await
        .expect("tokens");
    assert_eq!(tokens.expires_in, 300);
    assert_eq!(tokens.scope, "openid profile offline_access");
    let access: AccessTokenClaims = decode(&provider, &tokens.access_token).await;
    assert_eq!(
        (access.iss.as_str(), access.client_id.as_str()),
        (ISSUER, "rp")
    );
    assert_eq!(access.exp, START + 300);
    assert_eq!(access.acr.as_deref(), Some(ACR_OTP));
    let id: IdTokenClaims = decode(&provider, &tokens.id_token).await;
    assert_eq!(id.aud, "rp");
    assert_eq!(id.exp, START + 600);
    assert_eq!(id.amr, scopes(&["mfa", "swk", "otp"]));
    assert_eq!(id.at_hash, claims::half_hash(&tokens.access_token));
    assert_eq!(id.profile.given_name.as_deref(), Some("Alice"));
    assert!(tokens.refresh_token.is_some());

    // The client's own algorithm signs its ID token.
    let other = provider.client("other").expect("client");
    let tokens = provider
        .mint(
            other,
            &auth(&user, &scopes(&["openid"]), ApprovalMethod::Push),
        )
        .await
        .expect("tokens");
    let header = josekit::jwt::decode_header(&tokens.id_token).expect("header");
    assert_eq!(header.claim("alg"), Some(&serde_json::Value::from("ES256")));
    assert_eq!(tokens.refresh_token, None);
}

fn algorithm(token: &str) -> serde_json::Value {
    josekit::jwt::decode_header(token)
        .expect("header")
        .claim("alg")
        .cloned()
        .unwrap_or_default()
}

#[tokio::test]
async fn access_tokens_are_es256_unless_configured_and_id_tokens_follow_the_client() {
    let (user, granted) = (alice(), scopes(&["openid"]));
    let approval = auth(&user, &granted, ApprovalMethod::Push);
    let (provider, _) = provider().await;
    let client = provider.client("rp").expect("client");
    let tokens = provider.mint(client, &approval).await.expect("tokens");
    assert_eq!(algorithm(&tokens.access_token), "ES256");
    assert_eq!(
        algorithm(&tokens.id_token),
        "RS256",
        "the client's registration"
    );

    let (provider, _) = provider_with(r#"access_token_signing_alg = "PS256""#).await;
    let client = provider.client("rp").expect("client");
    let tokens = provider.mint(client, &approval).await.expect("tokens");
    assert_eq!(algorithm(&tokens.access_token), "PS256");
    let access: AccessTokenClaims = decode(&provider, &tokens.access_token).await;
    assert_eq!(access.client_id, "rp", "verifiable with the published keys");
}

#[tokio::test]
async fn a_refresh_token_rotates_and_the_spent_one_is_refused() {
    let (provider, clock) = provider().await;
    let client = provider.client("rp").expect("client");
    let (user, granted) = (alice(), scopes(&["openid", "offline_access"]));
    let first = provider
        .mint(client, &auth(&user, &granted, ApprovalMethod::Push))
        .await
        .expect("tokens");
    let first_refresh = first.refresh_token.expect("a refresh token");

    clock.advance(Duration::from_secs(60));
    let second = refresh(&provider, "rp", &first_refresh)
        .await
        .expect("refreshed");
    let second_refresh = second.refresh_token.clone().expect("a new refresh token");
    assert_ne!(second_refresh, first_refresh);
    // The rotated token works in turn.
    let third = refresh(&provider, "rp", &second_refresh)
        .await
        .expect("refreshed again");
    let third_refresh = third.refresh_token.clone().expect("a newer refresh token");
    assert_eq!(
        refresh(&provider, "rp", &first_refresh).await.err(),
        Some(ErrorCode::InvalidGrant)
    );

    // The new tokens keep the approval they stand for, issued now.
    let id: IdTokenClaims = decode(&provider, &second.id_token).await;
    assert_eq!((id.auth_time, id.iat), (START - 7, START + 60));
    assert_eq!(id.amr, scopes(&["mfa", "swk", "user"]));
    // The spent token came back: its whole family is revoked (RFC 6819 §5.2.2.3), the
    // newest token included.
    assert_eq!(
        refresh(&provider, "rp", &third_refresh).await.err(),
        Some(ErrorCode::InvalidGrant)
    );
}

#[tokio::test]
async fn another_client_can_neither_use_nor_burn_a_refresh_token() {
    let (provider, _clock) = provider().await;
    let client = provider.client("rp").expect("client");
    let (user, granted) = (alice(), scopes(&["openid", "offline_access"]));
    let tokens = provider
        .mint(client, &auth(&user, &granted, ApprovalMethod::Push))
        .await
        .expect("tokens");
    let token = tokens.refresh_token.expect("a refresh token");
    assert_eq!(
        refresh(&provider, "other", &token).await.err(),
        Some(ErrorCode::InvalidGrant)
    );
    assert_eq!(
        introspect(&provider, "other", &token).await,
        Introspection::inactive()
    );
    assert!(refresh(&provider, "rp", &token).await.is_ok());
}

#[tokio::test]
async fn rotation_never_extends_the_session() {
    let (provider, clock) = provider().await;
    let client = provider.client("rp").expect("client");
    let (user, granted) = (alice(), scopes(&["openid", "offline_access"]));
    let mut token = provider
        .mint(client, &auth(&user, &granted, ApprovalMethod::Push))
        .await
        .expect("tokens")
        .refresh_token
        .expect("a refresh token");
    // Refreshing every 20 minutes keeps working only until the first hour is over.
    for _ in 0..2 {
        clock.advance(Duration::from_secs(1200));
        let renewed = refresh(&provider, "rp", &token)
            .await
            .expect("within the session");
        token = renewed.refresh_token.expect("a refresh token");
        let seen = introspect(&provider, "rp", &token).await;
        assert_eq!(seen.token_type, Some(IntrospectedType::RefreshToken));
        assert_eq!(seen.exp, Some(START + 3600));
    }
    clock.advance(Duration::from_secs(1200));
    assert_eq!(clock.now_secs(), START + 3600);
    assert_eq!(
        refresh(&provider, "rp", &token).await.err(),
        Some(ErrorCode::InvalidGrant)
    );
}

#[tokio::test]
async fn introspection_follows_the_clock_and_the_client() {
    let (provider, clock) = provider().await;
    let client = provider.client("rp").expect("client");
    let (user, granted) = (alice(), scopes(&["openid"]));
    let tokens = provider
        .mint(client, &auth(&user, &granted, ApprovalMethod::Push))
        .await
        .expect("tokens");
    let active = introspect(&provider, "rp", &tokens.access_token).await;
    assert!(active.active);
    assert_eq!(active.client_id.as_deref(), Some("rp"));
    // Another client, an ID token, garbage: not active.
    assert!(
        !introspect(&provider, "other", &tokens.access_token)
            .await
            .active
    );
    assert!(!introspect(&provider, "rp", &tokens.id_token).await.active);
    assert!(!introspect(&provider, "rp", "garbage").await.active);
    clock.advance(Duration::from_secs(300));
    assert_eq!(
        introspect(&provider, "rp", &tokens.access_token).await,
        Introspection::inactive()
    );
}

#[tokio::test]
async fn rotated_signing_keys_are_picked_up_once_the_refresh_interval_passed() {
    let (provider, clock) = provider().await;
    let kids = |set: std::sync::Arc<crate::signing::KeySet>| -> Vec<String> {
        set.jwks()
            .keys()
            .iter()
            .filter_map(|key| key.key_id().map(str::to_owned))
            .collect()
    };
    let before = kids(provider.keys.keys().await);
    let current = provider
        .adapter
        .signing_keys()
        .rotate(Duration::from_secs(3600))
        .await
        .expect("rotated");
    assert_eq!(kids(provider.keys.keys().await), before);
    clock.advance(Duration::from_secs(30));
    let after = kids(provider.keys.keys().await);
    assert_eq!(after.len(), 4);
    assert!(before.iter().chain(&current).all(|kid| after.contains(kid)));
}
