//! The pages' messages: their Fluent files, embedded, in a catalogue of
//! `assent_core::l10n` (which also chooses the language).

use assent_core::l10n::{BadMessages, Catalog, Sources};

/// The message files, by language (the languages of `assent_core::config::PAGE_LANGUAGES`).
const SOURCES: Sources = &[
    ("en", include_str!("../../pages/locales/en.ftl")),
    ("de", include_str!("../../pages/locales/de.ftl")),
    ("fr", include_str!("../../pages/locales/fr.ftl")),
    ("es", include_str!("../../pages/locales/es.ftl")),
];

/// The pages' catalogue.
pub fn catalog() -> Result<Catalog, BadMessages> {
    Catalog::load(SOURCES)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use fluent_bundle::FluentArgs;

    use super::*;

    #[test]
    fn every_language_parses_and_has_every_message() {
        let catalog = catalog().expect("the message files parse");
        let mut args = FluentArgs::new();
        for name in [
            "app", "device", "page", "target", "digits", "attempts", "method",
        ] {
            args.set(name, "x");
        }
        let count = catalog.check_complete(&args).unwrap();
        assert!(count > 20, "{count}");
    }

    #[test]
    fn the_application_wins_then_accept_language_then_the_default() {
        let catalog = catalog().unwrap();
        assert_eq!(catalog.choose(Some("fr"), Some("de"), "en"), "fr");
        assert_eq!(catalog.choose(None, Some("de-CH, en;q=0.5"), "en"), "de");
        assert_eq!(catalog.choose(None, Some("it, es;q=0.8"), "en"), "es");
        assert_eq!(catalog.choose(None, Some("it"), "fr"), "fr");
        assert_eq!(catalog.choose(Some("xx"), None, "en"), "en");
    }
}
