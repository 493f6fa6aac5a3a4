//! The Kustomer origins an operator allows to host the adapter: `scheme://host[:port]`, or
//! `scheme://*.domain[:port]` for every subdomain of `domain`, as a CSP source expression writes
//! them. The gateway reads them from its configuration and writes them into the widget page's
//! `frame-ancestors`; the widget matches the host's `parentUrl` origin against the same list.

use std::fmt;

/// One allowed origin, or every subdomain of one (`https://*.kustomerapp.com`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OriginPattern {
    scheme: String,
    /// Lower case; without the `*.` of a wildcard.
    host: String,
    wildcard: bool,
    /// `None` for the scheme's default port.
    port: Option<u16>,
}

/// Why a text is not an allowed origin.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OriginError {
    #[error(
        "{0:?} is not an origin: write scheme://host[:port], e.g. https://acme.kustomerapp.com"
    )]
    Malformed(String),
    #[error("{0:?}: only http and https origins can host the adapter")]
    Scheme(String),
    #[error("{0:?}: an origin has no path, query or user name; write scheme://host[:port]")]
    NotJustOrigin(String),
    #[error("{0:?}: the port must be a number from 1 to 65535")]
    Port(String),
    #[error("{0:?}: a wildcard stands only for the leftmost labels of a domain with a dot in it, e.g. https://*.kustomerapp.com")]
    Wildcard(String),
}

impl OriginPattern {
    /// Reads one origin, `scheme://host[:port]` or `scheme://*.domain[:port]`; a default port is
    /// dropped and the host lower-cased, as a browser's `origin` has them.
    pub fn parse(text: &str) -> Result<OriginPattern, OriginError> {
        let text = text.trim();
        let shown = || text.chars().take(200).collect::<String>();
        let (scheme, rest) = text
            .split_once("://")
            .ok_or_else(|| OriginError::Malformed(shown()))?;
        let scheme = scheme.to_ascii_lowercase();
        let default_port = match scheme.as_str() {
            "https" => 443,
            "http" => 80,
            _ => return Err(OriginError::Scheme(shown())),
        };
        // A single trailing slash is how origins are often pasted; anything more is a path.
        let authority = rest.strip_suffix('/').unwrap_or(rest);
        if authority.contains(['/', '?', '#', '@', '\\']) {
            return Err(OriginError::NotJustOrigin(shown()));
        }
        let (host, port) = match authority.rsplit_once(':') {
            // An IPv6 literal without port, e.g. [::1].
            Some((host, port)) if !port.contains(']') => {
                let port = port
                    .parse::<u16>()
                    .ok()
                    .filter(|p| *p > 0)
                    .ok_or_else(|| OriginError::Port(shown()))?;
                (host, (port != default_port).then_some(port))
            }
            _ => (authority, None),
        };
        let (wildcard, host) = match host.strip_prefix("*.") {
            Some(domain) => (true, domain),
            None => (false, host),
        };
        let host = host.to_ascii_lowercase();
        let ipv6 = host.starts_with('[') && host.ends_with(']') && host.len() > 2;
        let name_ok = !host.is_empty()
            && host.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && label
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            });
        let ipv6_ok = ipv6
            && host[1..host.len() - 1]
                .bytes()
                .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.');
        if host.contains('*') || (wildcard && (ipv6 || !host.contains('.'))) {
            return Err(OriginError::Wildcard(shown()));
        }
        if !(name_ok || ipv6_ok) {
            return Err(OriginError::Malformed(shown()));
        }
        Ok(OriginPattern {
            scheme,
            host,
            wildcard,
            port,
        })
    }

    /// Whether `origin` (as `MessageEvent.origin` has it: lower case, `scheme://host[:port]`,
    /// no default port) is this one, or a subdomain of this wildcard's domain.
    pub fn matches(&self, origin: &str) -> bool {
        source_matches(&self.to_string(), origin)
    }
}

/// Whether `origin` (as `MessageEvent.origin` has it) is the one `source` names, or a subdomain
/// of its wildcard (`https://*.kustomerapp.com`), `source` written as [`OriginPattern`] prints
/// it. Plain string work, so the widget can check its host without the parser: a `source` that
/// is not written that way (a path, a default port spelled out) matches nothing.
pub fn source_matches(source: &str, origin: &str) -> bool {
    let source = source.trim();
    let (Some((scheme, rest)), Some((origin_scheme, origin_rest))) =
        (source.split_once("://"), origin.split_once("://"))
    else {
        return false;
    };
    if !scheme.eq_ignore_ascii_case(origin_scheme) || origin_rest.contains(['/', '@', '*']) {
        return false;
    }
    match rest.strip_prefix("*.") {
        None => rest.eq_ignore_ascii_case(origin_rest),
        // `*.kustomerapp.com[:port]`: one or more labels, a dot, then exactly the rest.
        Some(domain) => origin_rest
            .len()
            .checked_sub(domain.len())
            .filter(|at| *at >= 2 && origin_rest.is_char_boundary(*at))
            .is_some_and(|at| {
                let (sub, tail) = origin_rest.split_at(at);
                tail.eq_ignore_ascii_case(domain) && sub.ends_with('.') && !sub.contains(':')
            }),
    }
}

impl fmt::Display for OriginPattern {
    /// As a CSP source expression (and as an origin, when it is not a wildcard).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let star = if self.wildcard { "*." } else { "" };
        write!(f, "{}://{star}{}", self.scheme, self.host)?;
        match self.port {
            Some(port) => write!(f, ":{port}"),
            None => Ok(()),
        }
    }
}

impl std::str::FromStr for OriginPattern {
    type Err = OriginError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        OriginPattern::parse(text)
    }
}

/// The sources of a list separated by spaces or commas, as the widget page's meta tag carries
/// it (unchecked: one that is not an origin matches nothing).
pub fn split_list(text: &str) -> Vec<String> {
    text.split([' ', ',', '\t', '\n'])
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Whether `origin` is one of the `allowed` sources.
pub fn is_allowed(allowed: &[String], origin: &str) -> bool {
    allowed.iter().any(|source| source_matches(source, origin))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_and_wildcards_read_and_print_as_csp_sources() {
        let cases: &[(&str, Result<&str, ()>)] = &[
            (
                "https://acme.kustomerapp.com",
                Ok("https://acme.kustomerapp.com"),
            ),
            (
                "HTTPS://ACME.kustomerapp.com/",
                Ok("https://acme.kustomerapp.com"),
            ),
            (
                "https://acme.kustomerapp.com:443",
                Ok("https://acme.kustomerapp.com"),
            ),
            ("https://*.kustomerapp.com", Ok("https://*.kustomerapp.com")),
            (
                "https://*.kustomerapp.com:8443",
                Ok("https://*.kustomerapp.com:8443"),
            ),
            ("http://127.0.0.1:8720", Ok("http://127.0.0.1:8720")),
            ("http://localhost", Ok("http://localhost")),
            ("http://[::1]:8720", Ok("http://[::1]:8720")),
            (" https://a.example ", Ok("https://a.example")),
            ("*", Err(())),
            ("https://*", Err(())),
            ("https://*.com", Err(())),
            ("https://a.*.example", Err(())),
            ("https://*a.example", Err(())),
            ("'self'", Err(())),
            ("https:", Err(())),
            ("ftp://a.example", Err(())),
            ("javascript://a.example", Err(())),
            ("https://a.example/app", Err(())),
            ("https://a.example?x", Err(())),
            ("https://user@a.example", Err(())),
            ("https://a.example:0", Err(())),
            ("https://a.example:99999", Err(())),
            ("https://a.example:", Err(())),
            ("https://", Err(())),
            ("https://a..example", Err(())),
            ("https://a example", Err(())),
            ("https://a\"example", Err(())),
            ("https://a;example", Err(())),
        ];
        for (input, want) in cases {
            let got = OriginPattern::parse(input).map(|p| p.to_string());
            assert_eq!(got.as_deref().map_err(|_| ()), *want, "{input:?}");
        }
    }

    #[test]
    fn a_pattern_matches_its_origin_or_its_subdomains_only() {
        let exact = OriginPattern::parse("https://acme.kustomerapp.com").unwrap();
        let any = OriginPattern::parse("https://*.kustomerapp.com").unwrap();
        let demo = OriginPattern::parse("http://127.0.0.1:8720").unwrap();
        let cases: &[(&OriginPattern, &str, bool)] = &[
            (&exact, "https://acme.kustomerapp.com", true),
            (&exact, "https://other.kustomerapp.com", false),
            (&exact, "http://acme.kustomerapp.com", false),
            (&exact, "https://acme.kustomerapp.com:8443", false),
            (&any, "https://acme.kustomerapp.com", true),
            (&any, "https://a.b.kustomerapp.com", true),
            (&any, "https://kustomerapp.com", false),
            (&any, "https://evilkustomerapp.com", false),
            (&any, "https://acme.kustomerapp.com.evil.test", false),
            (&any, "http://acme.kustomerapp.com", false),
            (&demo, "http://127.0.0.1:8720", true),
            (&demo, "http://127.0.0.1:8721", false),
            (&demo, "http://localhost:8720", false),
            (&demo, "null", false),
            (&demo, "", false),
        ];
        for (pattern, origin, want) in cases {
            assert_eq!(pattern.matches(origin), *want, "{pattern} vs {origin:?}");
        }
    }

    #[test]
    fn a_list_is_split_and_what_is_not_an_origin_matches_nothing() {
        let allowed = split_list(
            "https://*.kustomerapp.com, http://127.0.0.1:8720 nope\thttps://a.example/app",
        );
        assert_eq!(allowed.len(), 4);
        assert!(is_allowed(&allowed, "https://acme.kustomerapp.com"));
        assert!(is_allowed(&allowed, "http://127.0.0.1:8720"));
        assert!(!is_allowed(&allowed, "https://evil.test"));
        assert!(
            !is_allowed(&allowed, "https://a.example"),
            "a source with a path is not an origin"
        );
        assert!(!is_allowed(&allowed, "nope"));
        assert!(!is_allowed(&[], "http://127.0.0.1:8720"));
        // A wildcard does not stretch over a port or a user name.
        assert!(!source_matches(
            "https://*.kustomerapp.com",
            "https://a.kustomerapp.com:8443"
        ));
        assert!(!source_matches(
            "https://*.kustomerapp.com",
            "https://x@a.kustomerapp.com"
        ));
        assert!(!source_matches(
            "https://*.kustomerapp.com",
            "https://.kustomerapp.com"
        ));
        assert!(source_matches(
            "HTTPS://*.Kustomerapp.com",
            "https://a.kustomerapp.com"
        ));
    }
}
