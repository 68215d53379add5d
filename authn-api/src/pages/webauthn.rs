//! The WebAuthn pages' part: the options a page hands to `navigator.credentials` (through
//! a data attribute: the strict CSP allows no inline script), and the form fields its
//! script posts back, read as the JSON API reads the widget's.

use assent_proto::authn::{ActionId, ActionRequest, Assertion, Attestation, AuthnState, Status};
use serde::Serialize;

/// What a WebAuthn page's script needs to run the ceremony.
#[derive(Debug, Serialize)]
pub struct WebauthnView {
    /// `create` (set up) or `get` (sign in): the `navigator.credentials` call.
    pub ceremony: &'static str,
    /// The action the answer is posted with.
    pub action: &'static str,
    /// The form field the answer goes in: `attestation` or `assertion`.
    pub field: &'static str,
    /// The options as JSON, binary fields as arrays of byte numbers (the widget's shape).
    pub options: String,
    /// The message id of the button that starts the ceremony.
    pub button: &'static str,
    /// Whether the script starts the ceremony as the page loads. Not after an answer was
    /// refused: the person reads why first, then tries again with the button.
    pub autostart: bool,
}

/// The WebAuthn part of `state`'s page, for the WebAuthn statuses whose action is offered.
pub fn view(state: &AuthnState, refused: bool) -> Option<WebauthnView> {
    let (ceremony, action, field, options, button) = match &state.status {
        Status::SecurityKeyActivationRequired(fields) => (
            "create",
            ActionId::ActivateSecurityKeyDevice,
            "attestation",
            fields.public_key_credential_creation_options.clone(),
            "webauthn-setup-button",
        ),
        Status::PlatformActivationRequired(fields) => (
            "create",
            ActionId::ActivatePlatformDevice,
            "attestation",
            fields.public_key_credential_creation_options.clone(),
            "webauthn-setup-button",
        ),
        Status::AssertionRequired(fields) => (
            "get",
            ActionId::CheckAssertion,
            "assertion",
            serde_json::to_string(&fields.public_key_credential_request_options).ok()?,
            "webauthn-sign-in-button",
        ),
        _ => return None,
    };
    state.offers(action).then(|| WebauthnView {
        ceremony,
        action: action.as_str(),
        field,
        options,
        button,
        autostart: !refused,
    })
}

/// The WebAuthn answer fields of a page's form.
#[derive(Debug, Default)]
pub struct Answer {
    /// The new credential (set-up).
    pub attestation: Option<String>,
    /// The signed challenge (sign-in).
    pub assertion: Option<String>,
    /// The page's origin, as the browser reports it.
    pub origin: Option<String>,
    /// What the browser supports (sign-in).
    pub compatibility: Option<assent_proto::authn::Compatibility>,
}

/// The request of a WebAuthn action's form; `None` for another action, or when a field
/// the action needs is missing or blank.
pub fn request(action: ActionId, answer: Answer) -> Option<ActionRequest> {
    let given = |field: Option<String>| field.filter(|value| !value.trim().is_empty());
    let attestation = |answer: Answer| {
        Some(Attestation {
            attestation: given(answer.attestation)?,
            origin: given(answer.origin)?,
        })
    };
    Some(match action {
        ActionId::ActivateSecurityKeyDevice => {
            ActionRequest::ActivateSecurityKeyDevice(attestation(answer)?)
        }
        ActionId::ActivatePlatformDevice => {
            ActionRequest::ActivatePlatformDevice(attestation(answer)?)
        }
        ActionId::CheckAssertion => ActionRequest::CheckAssertion(Assertion {
            assertion: given(answer.assertion)?,
            origin: given(answer.origin)?,
            compatibility: answer.compatibility?,
        }),
        _ => return None,
    })
}

/// Whether `action` is one of the WebAuthn pages' answers.
pub fn is_answer(action: ActionId) -> bool {
    matches!(
        action,
        ActionId::ActivateSecurityKeyDevice
            | ActionId::ActivatePlatformDevice
            | ActionId::CheckAssertion
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::collections::BTreeMap;

    use assent_core::flow::{Flow, FlowAction};
    use assent_core::policy::Method;
    use assent_proto::authn::{
        AllowedCredential, AssertionChallenge, Compatibility, Device, DeviceRef, DeviceType, Link,
        PLUGIN_TYPE_ID, PublicKeyCredentialRequestOptions, WebauthnActivation,
    };
    use serde_json::json;

    use super::*;
    use crate::pages::{Form, Pages, flow_action, view};

    /// A stored flow: the page takes its application and kind from it; the status comes
    /// from the state under test.
    const FLOW: &str = r#"{"head":{"id":"Xw6sdEywvMrvbzV0jhPwu3Xo","client_id":"demo-federation","user_id":"oob-0","application":{"name":"Bench Bank","id":null,"iconUrl":null},"client_ip":"203.0.113.7","params":{},"message":{"title":"Sign-in request","body":"Approve sign-in to Bench Bank?"},"return_url":null,"created_at_ms":1796173163795,"devices":[],"result_picked_up":false,"manage_devices":false,"pushes_sent":0,"browser_binding":null,"one_time_device":null,"policy":{"use_code":false,"otp_fallback":true,"number_matching":false,"otp_length":6},"otp_failures":0,"codes_sent":0},"state":{"oob":{"state":"push_waiting","push":{"auth_id":"Xw6sdEywvMrvbzV0jhPwu3Xo.0AGtVYEi6sDa","device_id":"G6hvJ4peXrRC8UMx390V","sent_at_ms":1796173163798,"expires_at_ms":1796173283798,"silent":false}}}}"#;

    /// Creation options with characters HTML must escape, to show they reach the script
    /// intact and cannot end the attribute.
    const CREATION: &str = r#"{"rp":{"id":"localhost","name":"Bank <&> \"Test\" 'x'"},"user":{"id":[1,2,3],"name":"alice","displayName":"alice"},"challenge":[9,8,7,255],"pubKeyCredParams":[{"type":"public-key","alg":-7}],"timeout":60000,"attestation":"none"}"#;

    fn state(status: Status, actions: &[ActionId]) -> AuthnState {
        AuthnState {
            id: "Xw6sdEywvMrvbzV0jhPwu3Xo".into(),
            plugin_type_id: PLUGIN_TYPE_ID.into(),
            admin_message: None,
            authn_api_state: None,
            links: actions
                .iter()
                .map(|action| (*action, Link { href: "/x".into() }))
                .collect::<BTreeMap<_, _>>(),
            status,
        }
    }

    fn key(id: &str, nickname: Option<&str>) -> Device {
        Device {
            id: id.into(),
            device_type: DeviceType::SecurityKey,
            name: "Security Key".into(),
            nickname: nickname.map(str::to_owned),
            target: "YubiKey 5".into(),
            default: false,
            default_device: false,
            usable: true,
            unusable_reason: None,
            otp_enabled: false,
            push_enabled: false,
            backup: false,
        }
    }

    fn assertion_state() -> AuthnState {
        state(
            Status::AssertionRequired(AssertionChallenge {
                devices: vec![key("k1", None), key("k2", Some("Blue key"))],
                selected_device_ref: Some(DeviceRef { id: "k1".into() }),
                change_device_permitted: true,
                application_name: "Bench Bank".into(),
                public_key_credential_request_options: request_options(),
            }),
            &[
                ActionId::CheckAssertion,
                ActionId::SelectDevice,
                ActionId::CancelAuthentication,
            ],
        )
    }

    fn request_options() -> PublicKeyCredentialRequestOptions {
        PublicKeyCredentialRequestOptions {
            challenge: vec![0, 1, 2, 250],
            timeout: Some(60000),
            rp_id: "localhost".into(),
            allow_credentials: vec![AllowedCredential {
                kind: "public-key".into(),
                id: vec![7, 7, 7],
                transports: Some(vec!["usb".into()]),
            }],
            user_verification: "discouraged".into(),
        }
    }

    /// The page for `state` in `lang`: its template and HTML.
    fn render(state: &AuthnState, lang: &'static str, refused: bool) -> (&'static str, String) {
        let pages = Pages::load().unwrap();
        let flow: Flow = serde_json::from_str(FLOW).unwrap();
        let notice = refused.then_some(view::Notice {
            message: "notice-webauthn-refused",
            attempts: None,
        });
        let page = view::page(state, &flow, lang, "token".into(), notice, &pages.catalog);
        let html = pages.render(page.template, &page).unwrap();
        (page.template, html)
    }

    /// The value of the attribute `name` in `html`, unescaped as a browser reads it.
    fn attribute(html: &str, name: &str) -> Option<String> {
        let start = html.find(&format!(" {name}=\""))? + name.len() + 3;
        let end = start + html[start..].find('"')?;
        Some(
            html[start..end]
                .replace("&quot;", "\"")
                .replace("&#x27;", "'")
                .replace("&#x2f;", "/")
                .replace("&lt;", "<")
                .replace("&gt;", ">")
                .replace("&amp;", "&"),
        )
    }

    #[test]
    fn the_security_key_set_up_page_hands_its_options_to_the_script_intact() {
        let activation = state(
            Status::SecurityKeyActivationRequired(WebauthnActivation {
                public_key_credential_creation_options: CREATION.into(),
            }),
            &[
                ActionId::ActivateSecurityKeyDevice,
                ActionId::CancelAuthentication,
            ],
        );
        let (template, html) = render(&activation, "en", false);
        assert_eq!(template, "webauthn.html");
        assert!(html.contains("<h1>Set up your security key</h1>"), "{html}");
        assert_eq!(attribute(&html, "data-options").unwrap(), CREATION);
        assert_eq!(attribute(&html, "data-ceremony").unwrap(), "create");
        assert_eq!(attribute(&html, "data-autostart").unwrap(), "true");
        assert!(html.contains(r#"name="action" value="activateSecurityKeyDevice""#));
        assert!(html.contains(r#"name="attestation" data-answer"#));
        assert!(html.contains(r#"name="origin" data-origin"#));
        assert!(html.contains(r#"name="csrf" value="token""#));
        assert!(!html.contains(r#"name="compatibility""#));
        assert!(html.contains(">Set up</button>"));
        assert!(html.contains("This step needs JavaScript"));
        assert!(html.contains(r#"value="cancelAuthentication""#));
        // No script of its own: the CSP allows none inline.
        assert_eq!(html.matches("<script").count(), 1);

        let (_, german) = render(&activation, "de", false);
        assert!(german.contains("<h1>Sicherheitsschlüssel einrichten</h1>"));
        assert!(german.contains(">Einrichten</button>"));
        assert!(german.contains("Erneut versuchen"));
    }

    #[test]
    fn the_platform_set_up_page_posts_activate_platform_device() {
        let activation = state(
            Status::PlatformActivationRequired(WebauthnActivation {
                public_key_credential_creation_options: CREATION.into(),
            }),
            &[ActionId::ActivatePlatformDevice],
        );
        let (template, html) = render(&activation, "fr", false);
        assert_eq!(template, "webauthn.html");
        assert!(html.contains("<h1>Configurer cet appareil</h1>"), "{html}");
        assert!(html.contains(r#"name="action" value="activatePlatformDevice""#));
        assert_eq!(attribute(&html, "data-options").unwrap(), CREATION);
        // Not offered: no cancel form.
        assert!(!html.contains("cancelAuthentication"));
    }

    #[test]
    fn the_sign_in_page_names_the_key_and_hands_over_the_request_options() {
        let (template, html) = render(&assertion_state(), "en", false);
        assert_eq!(template, "webauthn.html");
        assert!(html.contains("<h1>Use your security key</h1>"), "{html}");
        assert!(html.contains("To sign in to Bench Bank, use Security key:"));
        let options: PublicKeyCredentialRequestOptions =
            serde_json::from_str(&attribute(&html, "data-options").unwrap()).unwrap();
        assert_eq!(options, request_options());
        let options: serde_json::Value =
            serde_json::from_str(&attribute(&html, "data-options").unwrap()).unwrap();
        assert_eq!(options["challenge"], json!([0, 1, 2, 250]));
        assert_eq!(options["allowCredentials"][0]["id"], json!([7, 7, 7]));
        assert_eq!(options["rpId"], "localhost");
        assert_eq!(attribute(&html, "data-ceremony").unwrap(), "get");
        assert!(html.contains(r#"name="action" value="checkAssertion""#));
        assert!(html.contains(r#"name="assertion" data-answer"#));
        assert!(html.contains(r#"name="compatibility" value="NONE" data-compatibility"#));
        assert!(html.contains(">Use security key</button>"));
        // Another device, as the other pages offer it, by the person's names.
        assert!(html.contains(r#"<select id="other-device" name="device">"#));
        assert!(html.contains(r#"<option value="k1" selected>Security key (YubiKey 5)</option>"#));
        assert!(html.contains(r#"<option value="k2">Blue key (YubiKey 5)</option>"#));
        assert!(html.contains(r#"value="cancelAuthentication""#));

        let (_, spanish) = render(&assertion_state(), "es", false);
        assert!(spanish.contains("<h1>Use su llave de seguridad</h1>"));
        assert!(spanish.contains("use Llave de seguridad:"));
    }

    #[test]
    fn after_a_refused_answer_the_page_says_so_and_waits_for_the_button() {
        let (_, html) = render(&assertion_state(), "en", true);
        assert!(html.contains("answer was not accepted"), "{html}");
        assert!(attribute(&html, "data-autostart").is_none());
        let (_, german) = render(&assertion_state(), "de", true);
        assert!(german.contains("Die Antwort Ihres Sicherheitsschlüssels wurde nicht angenommen"));
    }

    #[test]
    fn no_ceremony_when_the_answer_is_not_offered() {
        let mut asked = assertion_state();
        asked.links.remove(&ActionId::CheckAssertion);
        let (template, html) = render(&asked, "en", false);
        assert_eq!(template, "webauthn.html");
        assert!(!html.contains("data-options"));
        assert!(!html.contains("checkAssertion"));
    }

    fn form(fields: serde_json::Value) -> Form {
        serde_json::from_value(fields).unwrap()
    }

    #[test]
    fn the_forms_build_the_requests_the_json_api_reads() {
        let attestation = Attestation {
            attestation: r#"{"id":"a"}"#.into(),
            origin: "http://localhost:8080".into(),
        };
        let answer = || Answer {
            attestation: Some(attestation.attestation.clone()),
            assertion: Some(r#"{"id":"b"}"#.into()),
            origin: Some(attestation.origin.clone()),
            compatibility: Some(Compatibility::SecurityKeyOnly),
        };
        assert_eq!(
            request(ActionId::ActivateSecurityKeyDevice, answer()),
            Some(ActionRequest::ActivateSecurityKeyDevice(
                attestation.clone()
            ))
        );
        assert_eq!(
            request(ActionId::ActivatePlatformDevice, answer()),
            Some(ActionRequest::ActivatePlatformDevice(attestation.clone()))
        );
        assert_eq!(
            request(ActionId::CheckAssertion, answer()),
            Some(ActionRequest::CheckAssertion(Assertion {
                assertion: r#"{"id":"b"}"#.into(),
                origin: "http://localhost:8080".into(),
                compatibility: Compatibility::SecurityKeyOnly,
            }))
        );
        assert_eq!(request(ActionId::CheckOtp, answer()), None);

        // Through the page's form, to the domain action.
        let set_up = flow_action(form(json!({
            "action": "activateSecurityKeyDevice", "csrf": "t",
            "attestation": "{\"id\":\"a\"}", "origin": "http://localhost:8080",
        })));
        assert!(
            matches!(set_up, Some(FlowAction::ActivateWebauthn { method: Method::SecurityKey, ref attestation, ref origin })
                if attestation == "{\"id\":\"a\"}" && origin == "http://localhost:8080"),
            "{set_up:?}"
        );
        let platform = flow_action(form(json!({
            "action": "activatePlatformDevice", "attestation": "{}", "origin": "http://localhost",
        })));
        assert!(
            matches!(
                platform,
                Some(FlowAction::ActivateWebauthn {
                    method: Method::Platform,
                    ..
                })
            ),
            "{platform:?}"
        );
        let signed = flow_action(form(json!({
            "action": "checkAssertion", "assertion": "{\"id\":\"b\"}",
            "origin": "http://localhost", "compatibility": "FULL",
        })));
        assert!(
            matches!(signed, Some(FlowAction::CheckAssertion { ref assertion, ref origin })
                if assertion == "{\"id\":\"b\"}" && origin == "http://localhost"),
            "{signed:?}"
        );
    }

    #[test]
    fn a_form_without_its_answer_makes_no_action() {
        for fields in [
            json!({"action": "activateSecurityKeyDevice", "origin": "http://localhost"}),
            json!({"action": "activateSecurityKeyDevice", "attestation": "{}"}),
            json!({"action": "activatePlatformDevice", "attestation": " ", "origin": "http://localhost"}),
            json!({"action": "checkAssertion", "origin": "http://localhost", "compatibility": "FULL"}),
            json!({"action": "checkAssertion", "assertion": "{}", "compatibility": "NONE"}),
            json!({"action": "checkAssertion", "assertion": "{}", "origin": "http://localhost"}),
            // The wrong answer for the action.
            json!({"action": "checkAssertion", "attestation": "{}", "origin": "http://localhost", "compatibility": "NONE"}),
        ] {
            assert!(flow_action(form(fields.clone())).is_none(), "{fields}");
        }
        // A compatibility the widget never sends does not parse: the form is refused.
        assert!(
            serde_json::from_value::<Form>(json!({
                "action": "checkAssertion", "assertion": "{}", "origin": "o", "compatibility": "MAYBE",
            }))
            .is_err()
        );
    }
}
