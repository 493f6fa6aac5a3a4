//! Language negotiation. The adapter speaks English and French (the seeds exist in both); it
//! follows the host's language when the host says one, else the browser's preferences.

use serde::{Deserialize, Serialize};

/// A language the adapter's user interface is translated into.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Lang {
    #[default]
    En,
    Fr,
}

impl Lang {
    /// Every supported language, in the order they are offered.
    pub const ALL: [Lang; 2] = [Lang::En, Lang::Fr];

    /// The BCP 47 primary tag (`en`, `fr`), as used in `<html lang>`.
    pub fn tag(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Fr => "fr",
        }
    }

    /// Parses one BCP 47 tag (`fr`, `fr-CA`, `EN_us`) by its primary subtag; `None` when the
    /// language is not one the adapter speaks.
    pub fn from_tag(tag: &str) -> Option<Lang> {
        let primary = tag.trim().split(['-', '_']).next().unwrap_or_default();
        Lang::ALL
            .into_iter()
            .find(|lang| primary.eq_ignore_ascii_case(lang.tag()))
    }

    /// The first supported language in a preference list (most preferred first), or English.
    pub fn negotiate<'a>(preferences: impl IntoIterator<Item = &'a str>) -> Lang {
        preferences
            .into_iter()
            .find_map(Lang::from_tag)
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiation_table() {
        let cases: &[(&[&str], Lang)] = &[
            (&[], Lang::En),
            (&["fr"], Lang::Fr),
            (&["fr-CA", "en-US"], Lang::Fr),
            (&["FR_fr"], Lang::Fr),
            (&["en-GB", "fr"], Lang::En),
            (&["de-DE", "fr-BE", "en"], Lang::Fr),
            (&["de", "es"], Lang::En),
            (&["", "  fr  "], Lang::Fr),
            (&["french"], Lang::En),
            (&["-fr"], Lang::En),
        ];
        for (prefs, want) in cases {
            assert_eq!(
                Lang::negotiate(prefs.iter().copied()),
                *want,
                "preferences {prefs:?}"
            );
        }
    }

    #[test]
    fn tags_round_trip() {
        for lang in Lang::ALL {
            assert_eq!(Lang::from_tag(lang.tag()), Some(lang));
        }
    }
}
