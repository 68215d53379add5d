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

/// Characters that would make what a device shows differ from what it signs, decided by
/// the Unicode Character Database (ICU4X's tables, already in the tree through `url`),
/// not by a list kept here:
/// - general categories that print nothing or nothing fixed: controls (`Cc`), format
///   characters (`Cf`: bidirectional overrides and isolates, zero-width characters, tag
///   characters), line and paragraph separators (`Zl`, `Zp`), surrogates, private use and
///   unassigned code points, and enclosing marks (`Me`);
/// - `Default_Ignorable_Code_Point`: what fonts draw as nothing, such as variation
///   selectors and letters that are blank by design (U+3164 HANGUL FILLER is a letter by
///   category);
/// - combining marks of the overlay class (canonical combining class 1: U+0336 makes
///   "1̶0̶0"); other combining marks stay, as accents and Indic vowel signs need them;
/// - the Braille script: its patterns (U+2800 is blank) stand in for spaces and glyphs,
///   and a payee, an amount or a device name never needs them.
pub fn is_deceptive(c: char) -> bool {
    use icu_properties::props::{
        BinaryProperty, CanonicalCombiningClass, DefaultIgnorableCodePoint, EnumeratedProperty,
        GeneralCategory, Script,
    };
    matches!(
        GeneralCategory::for_char(c),
        GeneralCategory::Control
            | GeneralCategory::Format
            | GeneralCategory::LineSeparator
            | GeneralCategory::ParagraphSeparator
            | GeneralCategory::Surrogate
            | GeneralCategory::PrivateUse
            | GeneralCategory::Unassigned
            | GeneralCategory::EnclosingMark
    ) || DefaultIgnorableCodePoint::for_char(c)
        || CanonicalCombiningClass::for_char(c) == CanonicalCombiningClass::Overlay
        || Script::for_char(c) == Script::Braille
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
    fn deceptive_characters_are_told_by_their_unicode_properties() {
        let refused = [
            ('\u{0007}', "a control"),
            ('\u{202E}', "right-to-left override"),
            ('\u{2066}', "left-to-right isolate"),
            ('\u{200B}', "zero-width space"),
            ('\u{00AD}', "soft hyphen"),
            ('\u{FEFF}', "byte order mark"),
            ('\u{2028}', "line separator"),
            ('\u{2029}', "paragraph separator"),
            ('\u{3164}', "Hangul filler, blank by design"),
            ('\u{115F}', "Hangul choseong filler"),
            ('\u{2800}', "Braille pattern blank"),
            ('\u{2801}', "a Braille pattern"),
            ('\u{E0001}', "language tag"),
            ('\u{E0041}', "tag latin capital A"),
            ('\u{E007F}', "cancel tag"),
            ('\u{FE0F}', "variation selector 16"),
            ('\u{FE00}', "variation selector 1"),
            ('\u{E0100}', "variation selector 17"),
            ('\u{034F}', "combining grapheme joiner"),
            ('\u{0334}', "combining tilde overlay"),
            ('\u{0335}', "combining short stroke overlay"),
            (
                '\u{0336}',
                "combining long stroke overlay: 1\u{336}0\u{336}0\u{336}",
            ),
            ('\u{0338}', "combining long solidus overlay"),
            ('\u{20D2}', "combining long vertical line overlay"),
            ('\u{20DD}', "combining enclosing circle"),
            ('\u{E000}', "private use"),
            ('\u{0378}', "unassigned"),
        ];
        for (c, what) in refused {
            assert!(
                is_deceptive(c),
                "{what} (U+{:04X}) must be refused",
                c as u32
            );
            let value = format!("1{c}00");
            assert!(
                DynamicParams::parse([("amount".to_owned(), value)].into()).is_err(),
                "{what}"
            );
        }
        for text in [
            "Approve 1 000,00 € to Zürich AG",
            "e\u{301}te\u{301}",
            "नमस्ते",
            "مرحبا",
            "東京",
            "Alice's 📱",
            "Ωmega – “quoted” — ok",
        ] {
            assert!(
                !text.chars().any(is_deceptive),
                "{text} must pass: {:?}",
                text.chars().find(|c| is_deceptive(*c))
            );
        }
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
