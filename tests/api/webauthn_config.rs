//! WebAuthn's configuration as an operator meets it: `assent config check` on the
//! `[webauthn]` relying party and the SECURITY_KEY / PLATFORM methods.

use crate::soft_authenticator::Maker;
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
        &format!(
            "attestation = \"indirect\"\nallowed_aaguids = [\"cb69481e-8ff7-4039-93ec-0a2729a154a8\"]\n\
             attestation_roots = [\"{}\"]",
            file("vendor-root.pem", &Maker::new("Acme").root_pem()).display()
        ),
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

/// A file holding `contents`, named for the test that writes it.
fn file(name: &str, contents: &[u8]) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(unique("assent-attestation"));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, contents).unwrap();
    path
}

#[test]
fn config_check_validates_the_attestation_policy() {
    const AAGUIDS: &str = "allowed_aaguids = [\"cb69481e-8ff7-4039-93ec-0a2729a154a8\"]";
    let root = file("vendor-root.pem", &Maker::new("Acme").root_pem());
    let roots = |path: &std::path::Path| format!("attestation_roots = [\"{}\"]", path.display());
    let policy = |lines: &[&str]| relying_party("\"https://login.example.com\"", &lines.join("\n"));
    let indirect = "attestation = \"indirect\"";

    let (ok, message) = check(ALLOWED, &policy(&[indirect, AAGUIDS, &roots(&root)]));
    assert!(ok, "{message}");

    // Each part of the policy missing: the error names the key missing.
    for (lines, key) in [
        (vec![indirect, AAGUIDS], "webauthn.attestation_roots"),
        (vec![indirect, &roots(&root)], "webauthn.allowed_aaguids"),
        // Roots without the policy would be trusted for nothing.
        (vec![&roots(&root)], "webauthn.attestation_roots"),
    ] {
        let (ok, message) = check(ALLOWED, &policy(&lines));
        assert!(!ok, "{lines:?}");
        assert!(message.contains(key), "{lines:?}: {message}");
    }

    // A root that is not there, or not a PEM certificate: named by its path.
    let missing = root.with_file_name("missing.pem");
    let not_pem = file("vendor-root.der", b"\x30\x82 not a certificate");
    for (path, why) in [
        (&missing, "No such file"),
        (&not_pem, "not a PEM certificate"),
    ] {
        let (ok, message) = check(ALLOWED, &policy(&[indirect, AAGUIDS, &roots(path)]));
        assert!(!ok, "{path:?}");
        assert!(
            message.contains("webauthn.attestation_roots")
                && message.contains(&path.display().to_string())
                && message.contains(why),
            "{message}"
        );
    }
}
