//! Dynamic parameters (a flat map of strings given at flow start) and the templates that
//! turn them into what the device shows. Rendered once, server-side; what the device
//! signs covers the parameters, so what was approved is what was shown.

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// At most this many parameters per flow.
const MAX_PARAMS: usize = 32;
/// Longest parameter name.
const MAX_NAME_LEN: usize = 64;
/// Longest parameter value.
const MAX_VALUE_LEN: usize = 256;
/// Longest rendered title or body.
const MAX_RENDERED_LEN: usize = 2048;

/// Characters that would make what a device shows differ from what it signs: controls,
/// bidirectional overrides and isolates, zero-width and other invisible format characters.
pub fn is_deceptive(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{00AD}'
                | '\u{061C}'
                | '\u{180E}'
                | '\u{200B}'..='\u{200F}'
                | '\u{202A}'..='\u{202E}'
                | '\u{2060}'..='\u{2064}'
                | '\u{2066}'..='\u{206F}'
                | '\u{FEFF}'
                | '\u{FFF9}'..='\u{FFFB}'
        )
}

/// Validated dynamic parameters, kept sorted so their canonical form is stable.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct DynamicParams(BTreeMap<String, String>);

impl DynamicParams {
    /// Checks names, sizes and characters; the message names the offending parameter.
    pub fn parse(raw: BTreeMap<String, String>) -> Result<Self, String> {
        if raw.len() > MAX_PARAMS {
            return Err(format!("at most {MAX_PARAMS} dynamic parameters"));
        }
        for (name, value) in &raw {
            if name.is_empty()
                || name.len() > MAX_NAME_LEN
                || !name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
            {
                return Err(format!(
                    "dynamic parameter name `{}` must be 1 to {MAX_NAME_LEN} of A-Z a-z 0-9 _ - .",
                    name.escape_default()
                ));
            }
            if value.len() > MAX_VALUE_LEN {
                return Err(format!(
                    "dynamic parameter `{name}` is longer than {MAX_VALUE_LEN} bytes"
                ));
            }
            if value.chars().any(is_deceptive) {
                return Err(format!(
                    "dynamic parameter `{name}` holds control or invisible formatting characters"
                ));
            }
        }
        Ok(Self(raw))
    }

    /// The parameters by name.
    pub fn as_map(&self) -> &BTreeMap<String, String> {
        &self.0
    }

    /// SHA-256 of the canonical form (JSON of the sorted map), base64url: what a device's
    /// proof binds.
    pub fn digest(&self) -> String {
        digest(&self.0)
    }
}

/// [`DynamicParams::digest`] of parameters as a device received them (a plain map on the
/// wire).
pub fn digest(params: &BTreeMap<String, String>) -> String {
    // A map of strings always serialises.
    let canonical = serde_json::to_vec(params).unwrap_or_default();
    URL_SAFE_NO_PAD.encode(Sha256::digest(canonical))
}

/// A message template from the configuration: `${name}` placeholders.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Template {
    /// Short title shown on the device.
    pub title: String,
    /// The body: what the person approves.
    pub body: String,
}

/// A rendered message, as shown on the device.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    /// Short title.
    pub title: String,
    /// The body.
    pub body: String,
}

impl Template {
    /// Renders title and body; an unknown placeholder or an unterminated one is an error,
    /// never an empty string.
    pub fn render(&self, params: &DynamicParams) -> Result<Message, String> {
        Ok(Message {
            title: render(&self.title, params)?,
            body: render(&self.body, params)?,
        })
    }

    /// The placeholders the template uses, for checking a configuration.
    pub fn validate(&self) -> Result<(), String> {
        for text in [&self.title, &self.body] {
            placeholders(text)?;
        }
        Ok(())
    }
}

fn placeholders(text: &str) -> Result<Vec<&str>, String> {
    let mut names = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        let after = &rest[start + 2..];
        let end = after
            .find('}')
            .ok_or_else(|| format!("unterminated placeholder in `{text}`"))?;
        names.push(&after[..end]);
        rest = &after[end + 1..];
    }
    Ok(names)
}

fn render(text: &str, params: &DynamicParams) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find('}')
            .ok_or_else(|| "unterminated placeholder in template".to_owned())?;
        let name = &after[..end];
        let value = params
            .as_map()
            .get(name)
            .ok_or_else(|| format!("the template needs dynamic parameter `{name}`"))?;
        out.push_str(value);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    if out.len() > MAX_RENDERED_LEN {
        return Err(format!(
            "the rendered message is longer than {MAX_RENDERED_LEN} bytes"
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> DynamicParams {
        DynamicParams::parse(
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        )
        .unwrap()
    }

    #[test]
    fn renders_every_placeholder() {
        let template = Template {
            title: "Transfer".into(),
            body: "Approve transfer of ${amount} to ${payee}?".into(),
        };
        let message = template
            .render(&params(&[("amount", "€100"), ("payee", "Bob")]))
            .unwrap();
        assert_eq!(message.body, "Approve transfer of €100 to Bob?");
    }

    #[test]
    fn unknown_placeholder_is_an_error_not_an_empty_string() {
        let template = Template {
            title: "t".into(),
            body: "to ${payee}".into(),
        };
        let error = template.render(&params(&[("amount", "1")])).unwrap_err();
        assert!(error.contains("payee"));
        let broken = Template {
            title: "t".into(),
            body: "to ${payee".into(),
        };
        assert!(broken.render(&params(&[("payee", "x")])).is_err());
    }

    #[test]
    fn hostile_parameters_are_refused() {
        let long = "x".repeat(MAX_VALUE_LEN + 1);
        for (name, value) in [
            ("a b", "1"),
            ("", "1"),
            ("ok", long.as_str()),
            ("ok", "a\u{0}b"),
            ("payee", "Bob\u{202E}evil"),
            ("amount", "1\u{200B}000"),
        ] {
            let raw = BTreeMap::from([(name.to_owned(), value.to_owned())]);
            assert!(DynamicParams::parse(raw).is_err(), "{name:?}");
        }
    }

    #[test]
    fn digest_depends_on_every_value() {
        let a = params(&[("amount", "100"), ("payee", "Bob")]);
        let b = params(&[("amount", "1000"), ("payee", "Bob")]);
        assert_ne!(a.digest(), b.digest());
        assert_eq!(
            a.digest(),
            params(&[("payee", "Bob"), ("amount", "100")]).digest()
        );
    }
}
