//! The pages' messages: one Fluent bundle per language, embedded, and the choice of
//! language for a request.

use std::collections::HashMap;

use fluent_bundle::concurrent::FluentBundle;
use fluent_bundle::{FluentArgs, FluentResource};
use fluent_langneg::{NegotiationStrategy, accepted_languages, negotiate_languages};
use unic_langid::LanguageIdentifier;

/// The message files, by language (the languages of `assent_core::config::PAGE_LANGUAGES`).
const SOURCES: &[(&str, &str)] = &[
    ("en", include_str!("../../pages/locales/en.ftl")),
    ("de", include_str!("../../pages/locales/de.ftl")),
    ("fr", include_str!("../../pages/locales/fr.ftl")),
    ("es", include_str!("../../pages/locales/es.ftl")),
];

/// The language a message missing from another file falls back to.
const FALLBACK: &str = "en";

/// Every language's messages.
pub struct Catalog {
    bundles: HashMap<&'static str, FluentBundle<FluentResource>>,
    available: Vec<LanguageIdentifier>,
}

/// A message file does not parse: a bug of the embedded files, caught by the unit test.
#[derive(Debug, thiserror::Error)]
#[error("the {0} message file does not parse")]
pub struct BadMessages(&'static str);

impl Catalog {
    /// Parses the embedded message files.
    pub fn load() -> Result<Self, BadMessages> {
        let mut bundles = HashMap::new();
        let mut available = Vec::new();
        for (language, source) in SOURCES {
            let id: LanguageIdentifier = language.parse().map_err(|_| BadMessages(language))?;
            let resource =
                FluentResource::try_new((*source).to_owned()).map_err(|_| BadMessages(language))?;
            let mut bundle = FluentBundle::new_concurrent(vec![id.clone()]);
            // Bidi isolation marks would end up inside HTML text and attribute values.
            bundle.set_use_isolating(false);
            bundle
                .add_resource(resource)
                .map_err(|_| BadMessages(language))?;
            bundles.insert(*language, bundle);
            available.push(id);
        }
        Ok(Self { bundles, available })
    }

    /// The language to answer in: the application's, else the first of `Accept-Language`
    /// the pages speak, else `default`.
    pub fn choose(
        &self,
        application: Option<&str>,
        accept_language: Option<&str>,
        default: &str,
    ) -> &'static str {
        if let Some(language) = application.and_then(|language| self.known(language)) {
            return language;
        }
        let requested = accepted_languages::parse(accept_language.unwrap_or_default());
        let chosen = negotiate_languages(
            &requested,
            &self.available,
            None,
            NegotiationStrategy::Filtering,
        );
        chosen
            .first()
            .and_then(|id| self.known(id.language.as_str()))
            .or_else(|| self.known(default))
            .unwrap_or(FALLBACK)
    }

    fn known(&self, language: &str) -> Option<&'static str> {
        SOURCES
            .iter()
            .map(|(known, _)| *known)
            .find(|known| *known == language)
            .filter(|known| self.bundles.contains_key(known))
    }

    /// Message `id` in `language` (else in English) with `args`, or `None` if no file has it.
    pub fn format(&self, language: &str, id: &str, args: &FluentArgs<'_>) -> Option<String> {
        [language, FALLBACK].into_iter().find_map(|language| {
            let bundle = self.bundles.get(language)?;
            let pattern = bundle.get_message(id)?.value()?;
            let mut errors = Vec::new();
            let text = bundle.format_pattern(pattern, Some(args), &mut errors);
            errors.is_empty().then(|| text.into_owned())
        })
    }

    /// The ids of the messages in `language`'s file, for checking the files agree.
    #[cfg(test)]
    fn ids(language: &str) -> Vec<String> {
        let source = SOURCES
            .iter()
            .find(|(known, _)| *known == language)
            .map(|(_, source)| *source)
            .unwrap_or_default();
        let mut ids: Vec<String> = source
            .lines()
            .filter(|line| !line.starts_with([' ', '#', '-']) && line.contains(" ="))
            .filter_map(|line| line.split(" =").next())
            .map(str::to_owned)
            .collect();
        ids.sort();
        ids
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn every_language_parses_and_has_every_message() {
        let catalog = Catalog::load().expect("the message files parse");
        let english = Catalog::ids("en");
        assert!(english.len() > 20, "{english:?}");
        for (language, _) in SOURCES {
            assert_eq!(
                Catalog::ids(language),
                english,
                "{language} differs from en"
            );
            for id in &english {
                let mut args = FluentArgs::new();
                for name in [
                    "app", "device", "page", "target", "digits", "attempts", "method",
                ] {
                    args.set(name, "x");
                }
                assert!(
                    catalog.format(language, id, &args).is_some(),
                    "{language}: {id}"
                );
            }
        }
    }

    #[test]
    fn the_application_wins_then_accept_language_then_the_default() {
        let catalog = Catalog::load().unwrap();
        assert_eq!(catalog.choose(Some("fr"), Some("de"), "en"), "fr");
        assert_eq!(catalog.choose(None, Some("de-CH, en;q=0.5"), "en"), "de");
        assert_eq!(catalog.choose(None, Some("it, es;q=0.8"), "en"), "es");
        assert_eq!(catalog.choose(None, Some("it"), "fr"), "fr");
        assert_eq!(catalog.choose(Some("xx"), None, "en"), "en");
    }
}
