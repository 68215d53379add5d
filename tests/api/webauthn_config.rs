//! WebAuthn's configuration as an operator meets it: `assent config check` on the
//! `[webauthn]` relying party and the SECURITY_KEY / PLATFORM methods.

use crate::support::{assent_command, repo_root, unique};

/// Runs `assent config check` on the shipped configuration with `extra` appended (and
/// `allowed` as the global allowed methods); its success and its error output.
fn check(allowed: &str, extra: &str) -> (bool, String) {
    let text = std::fs::read_to_string(repo_root().join("conf/assent.toml")).unwrap();
    let old = "allowed_methods = [\"PINGID_MOBILE\", \"SMS\", \"VOICE\", \"EMAIL\", \"TOTP\", \"YUBIKEY\", \"OATH_TOKEN\"]";
    assert!(text.contains(old), "the shipped [mfa] names its methods");
    let text = format!("{}\n{extra}\n", text.replace(old, allowed));
    let dir = std::env::temp_dir().join(unique("assent-webauthn-conf"));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("assent.toml");
    std::fs::write(&path, text).unwrap();
    let output = assent_command()
        .args(["config", "check", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

const ALLOWED: &str =
    "allowed_methods = [\"PINGID_MOBILE\", \"SMS\", \"SECURITY_KEY\", \"PLATFORM\"]";

fn relying_party(origins: &str, more: &str) -> String {
    format!(
        "[webauthn]\nrp_id = \"example.com\"\nrp_name = \"Example Bank\"\norigins = [{origins}]\n{more}"
    )
}

#[test]
fn config_check_validates_the_relying_party_and_the_webauthn_methods() {
    let good = relying_party(
        "\"https://login.example.com\", \"https://example.com:8443\"",
        "attestation = \"indirect\"\nallowed_aaguids = [\"cb69481e-8ff7-4039-93ec-0a2729a154a8\"]",
    );
    let (ok, message) = check(ALLOWED, &good);
    assert!(
        ok,
        "a relying party with its origins under rp_id is valid: {message}"
    );

    // A WebAuthn method without a relying party.
    let (ok, message) = check(ALLOWED, "");
    assert!(!ok);
    assert!(
        message.contains("`webauthn`") && message.contains("SECURITY_KEY"),
        "{message}"
    );

    // An origin outside the relying party's domain (a look-alike one included).
    for origin in [
        "\"https://example.org\"",
        "\"https://badexample.com\"",
        "\"http://login.example.com\"",
    ] {
        // Listed after a good one: `webauthn-rs` checks only the first origin.
        let origins = format!("\"https://login.example.com\", {origin}");
        let (ok, message) = check(ALLOWED, &relying_party(&origins, ""));
        assert!(!ok, "{origin}");
        assert!(message.contains("webauthn.origins"), "{message}");
    }

    // AAGUIDs without a verified attestation would only be the authenticator's claim.
    let claimed = relying_party(
        "\"https://login.example.com\"",
        "allowed_aaguids = [\"cb69481e-8ff7-4039-93ec-0a2729a154a8\"]",
    );
    let (ok, message) = check(ALLOWED, &claimed);
    assert!(!ok);
    assert!(message.contains("webauthn.allowed_aaguids"), "{message}");

    let (ok, message) = check(
        ALLOWED,
        &relying_party("\"https://login.example.com\"", "attestation = \"direct\""),
    );
    assert!(!ok);
    assert!(message.contains("attestation"), "{message}");

    let (ok, message) = check(
        ALLOWED,
        &relying_party("\"https://login.example.com\"", "challenge_ttl_secs = 0"),
    );
    assert!(!ok);
    assert!(message.contains("webauthn.challenge_ttl_secs"), "{message}");

    // Mandatory, a WebAuthn method is set up in the flow like any other.
    let (ok, message) = check(
        ALLOWED,
        &format!(
            "{}\n[group_policies.tellers]\nmandatory_authentication_methods = [\"SECURITY_KEY\"]",
            relying_party("\"https://login.example.com\"", "")
        ),
    );
    assert!(ok, "{message}");
}
