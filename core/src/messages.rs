//! The texts assent composes for people itself (a push's default title and body, a CIBA
//! request's body, the passcode by SMS, voice call and email), from Fluent files of their own in the
//! `crate::l10n` catalogue the pages use too, in the user's language (their profile's
//! `language`), else the configured default (`pages.default_language`).

use std::sync::LazyLock;

use fluent_bundle::FluentArgs;

use crate::error::AdapterError;
use crate::l10n::{BadMessages, Catalog, Sources};

/// The message files, by language.
const SOURCES: Sources = &[
    ("en", include_str!("../messages/en.ftl")),
    ("de", include_str!("../messages/de.ftl")),
    ("fr", include_str!("../messages/fr.ftl")),
    ("es", include_str!("../messages/es.ftl")),
];

/// Parsed once per process; a file that does not parse is a bug the unit test catches.
static CATALOG: LazyLock<Result<Catalog, BadMessages>> = LazyLock::new(|| Catalog::load(SOURCES));

/// The texts for one person, in the language chosen for them.
#[derive(Clone, Copy, Debug)]
pub struct Texts {
    language: &'static str,
}

impl Texts {
    /// The texts in `language` (a person's BCP 47 tag) when the catalogue speaks it (or
    /// its base language), else in `default`.
    pub fn for_language(language: Option<&str>, default: &str) -> Self {
        let language = match CATALOG.as_ref() {
            Ok(catalog) => catalog.choose(None, language, default),
            Err(_) => "en",
        };
        Self { language }
    }

    /// The language chosen.
    pub fn language(&self) -> &'static str {
        self.language
    }

    /// Message `id` with `args` (all strings: a code keeps its leading zeros).
    pub fn text(&self, id: &str, args: &[(&str, &str)]) -> Result<String, AdapterError> {
        let catalog = CATALOG
            .as_ref()
            .map_err(|error| AdapterError::internal(error.to_string()))?;
        let mut fluent = FluentArgs::new();
        for (name, value) in args {
            fluent.set(*name, (*value).to_owned());
        }
        catalog
            .format(self.language, id, &fluent)
            .ok_or_else(|| AdapterError::internal(format!("no message text `{id}`")))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn every_language_has_every_text() {
        let catalog = CATALOG.as_ref().expect("the message files parse");
        let mut args = FluentArgs::new();
        for name in ["app", "code", "digits", "minutes", "client", "binding"] {
            args.set(name, "x");
        }
        assert_eq!(catalog.check_complete(&args), Ok(10));
    }

    #[test]
    fn the_users_language_else_the_default() {
        let texts = |language: Option<&str>, default| Texts::for_language(language, default);
        assert_eq!(texts(Some("de-AT"), "en").language(), "de");
        assert_eq!(texts(Some("it"), "fr").language(), "fr");
        assert_eq!(texts(None, "es").language(), "es");
        let code = texts(Some("fr"), "en")
            .text(
                "sms-code",
                &[("code", "012345"), ("app", "Banque"), ("minutes", "5")],
            )
            .unwrap();
        assert_eq!(
            code,
            "012345 est votre code de connexion Banque. Il expire dans 5 min."
        );
        let email = texts(None, "en")
            .text(
                "email-code",
                &[("code", "1"), ("app", "B"), ("minutes", "5")],
            )
            .unwrap();
        assert_eq!(
            email,
            "Your B sign-in code is 1.\n\nIt expires in 5 minutes. If you did not try to sign \
             in, change your password."
        );
    }
}
