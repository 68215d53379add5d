//! Fluent message catalogues: one bundle per language, from embedded `.ftl` files, and
//! the choice of language for a person. The hosted pages and the texts assent sends
//! (`crate::messages`) each have a catalogue of their own, chosen the same way.

use std::collections::HashMap;

use fluent_bundle::concurrent::FluentBundle;
use fluent_bundle::{FluentArgs, FluentResource};
use fluent_langneg::{NegotiationStrategy, accepted_languages, negotiate_languages};
use unic_langid::LanguageIdentifier;

/// The language a message missing from another file falls back to.
const FALLBACK: &str = "en";

/// Message files by language: `(language, the file's text)`, English among them.
pub type Sources = &'static [(&'static str, &'static str)];

/// Every language's messages.
pub struct Catalog {
    sources: Sources,
    bundles: HashMap<&'static str, FluentBundle<FluentResource>>,
    available: Vec<LanguageIdentifier>,
}

/// A message file does not parse: a bug of the embedded files, caught by the unit tests.
#[derive(Debug, thiserror::Error)]
#[error("the {0} message file does not parse")]
pub struct BadMessages(&'static str);

impl Catalog {
    /// Parses the embedded message files.
    pub fn load(sources: Sources) -> Result<Self, BadMessages> {
        let mut bundles = HashMap::new();
        let mut available = Vec::new();
        for (language, source) in sources {
            let id: LanguageIdentifier = language.parse().map_err(|_| BadMessages(language))?;
            let resource =
                FluentResource::try_new((*source).to_owned()).map_err(|_| BadMessages(language))?;
            let mut bundle = FluentBundle::new_concurrent(vec![id.clone()]);
            // Bidi isolation marks would end up inside HTML text and attribute values, and
            // in text messages as invisible characters.
            bundle.set_use_isolating(false);
            bundle
                .add_resource(resource)
                .map_err(|_| BadMessages(language))?;
            bundles.insert(*language, bundle);
            available.push(id);
        }
        Ok(Self {
            sources,
            bundles,
            available,
        })
    }

    /// The language to answer in: `preferred` when the catalogue speaks it, else the first
    /// of `accept_language` (an `Accept-Language` list, or a person's BCP 47 tag) it
    /// speaks, else `default`.
    pub fn choose(
        &self,
        preferred: Option<&str>,
        accept_language: Option<&str>,
        default: &str,
    ) -> &'static str {
        if let Some(language) = preferred.and_then(|language| self.known(language)) {
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
        self.sources
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

    /// Checks that every file has the same messages as English's and that each formats
    /// with `args` in every language; the message says what is missing (for unit tests).
    pub fn check_complete(&self, args: &FluentArgs<'_>) -> Result<usize, String> {
        let english = message_ids(self.source(FALLBACK));
        for (language, source) in self.sources {
            if message_ids(source) != english {
                return Err(format!("{language} has other messages than en"));
            }
            for id in &english {
                if self.format(language, id, args).is_none() {
                    return Err(format!("{language}: {id} does not format"));
                }
            }
        }
        Ok(english.len())
    }

    fn source(&self, language: &str) -> &'static str {
        self.sources
            .iter()
            .find(|(known, _)| *known == language)
            .map(|(_, source)| *source)
            .unwrap_or_default()
    }
}

/// Whether `tag` is a well-formed BCP 47 language tag (`de`, `pt-BR`, `zh-Hant-TW`).
pub fn is_language_tag(tag: &str) -> bool {
    !tag.is_empty() && tag.len() <= 35 && tag.parse::<LanguageIdentifier>().is_ok()
}

/// The ids of the messages in a file's text.
fn message_ids(source: &str) -> Vec<String> {
    let mut ids: Vec<String> = source
        .lines()
        .filter(|line| !line.starts_with([' ', '#', '-']) && line.contains(" ="))
        .filter_map(|line| line.split(" =").next())
        .map(str::to_owned)
        .collect();
    ids.sort();
    ids
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    const SOURCES: Sources = &[
        ("en", "hello = Hello { $name }\n"),
        ("de", "hello = Hallo { $name }\n"),
        ("fr", "hello = Bonjour { $name }\n"),
    ];

    #[test]
    fn the_preferred_language_wins_then_accept_language_then_the_default() {
        let catalog = Catalog::load(SOURCES).unwrap();
        assert_eq!(catalog.choose(Some("fr"), Some("de"), "en"), "fr");
        assert_eq!(catalog.choose(None, Some("de-CH, en;q=0.5"), "en"), "de");
        assert_eq!(catalog.choose(None, Some("it, fr;q=0.8"), "en"), "fr");
        assert_eq!(catalog.choose(None, Some("it"), "fr"), "fr");
        assert_eq!(catalog.choose(Some("xx"), None, "en"), "en");
        assert_eq!(catalog.choose(None, Some("de-AT"), "fr"), "de");
        let mut args = FluentArgs::new();
        args.set("name", "Zoë");
        assert_eq!(catalog.format("de", "hello", &args).unwrap(), "Hallo Zoë");
        assert_eq!(catalog.check_complete(&args), Ok(1));
    }

    #[test]
    fn language_tags_are_checked_as_bcp_47() {
        for good in ["de", "pt-BR", "zh-Hant-TW", "en-GB", "es-419"] {
            assert!(is_language_tag(good), "{good}");
        }
        for bad in ["", "german!", "de_DE_x", "a", "x-toolongsubtagvalue", "de-"] {
            assert!(!is_language_tag(bad), "{bad}");
        }
    }
}
