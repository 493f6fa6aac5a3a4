//! Settings the page carries in `<meta>` tags, so an operator can change them in `dist/index.html`
//! without rebuilding.

use adapter_core::{
    origins,
    phone::{self, Country},
};

/// `<meta name="ccai-default-country" content="FR">`: the country of national numbers.
pub const DEFAULT_COUNTRY_META: &str = "ccai-default-country";
/// Used when the meta tag is missing, empty, or names a country whose format is not known.
pub const FALLBACK_COUNTRY: &str = "US";

/// `<meta name="ccai-kustomer-origins" content="https://*.kustomerapp.com …">`: the Kustomer
/// origins allowed to host the adapter, space-separated. The gateway writes it when it serves
/// the page; on another static host the operator does.
pub const KUSTOMER_ORIGINS_META: &str = "ccai-kustomer-origins";

/// The allowed Kustomer origins (none when the tag is missing or empty: no host is trusted).
pub fn kustomer_origins() -> Vec<String> {
    origins::split_list(&meta(KUSTOMER_ORIGINS_META).unwrap_or_default())
}

/// The `content` of `<meta name="{name}">`, trimmed; `None` when missing or empty.
pub fn meta(name: &str) -> Option<String> {
    let document = web_sys::window()?.document()?;
    let element = document
        .query_selector(&format!("meta[name='{name}']"))
        .ok()??;
    let content = element.get_attribute("content")?;
    let content = content.trim();
    (!content.is_empty()).then(|| content.to_owned())
}

/// The country whose national formats the dial pad reads.
pub fn default_country() -> &'static Country {
    country_or_fallback(meta(DEFAULT_COUNTRY_META).as_deref())
}

/// `iso`'s country, or the fallback when it is missing or unknown.
pub fn country_or_fallback(iso: Option<&str>) -> &'static Country {
    iso.and_then(phone::country)
        .or_else(|| phone::country(FALLBACK_COUNTRY))
        .unwrap_or(&phone::countries()[0])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_or_missing_countries_fall_back() {
        assert_eq!(country_or_fallback(Some("fr")).iso, "FR");
        assert_eq!(country_or_fallback(Some("XX")).iso, FALLBACK_COUNTRY);
        assert_eq!(country_or_fallback(None).iso, FALLBACK_COUNTRY);
    }
}
