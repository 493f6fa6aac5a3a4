//! Which origin the host is: the `parentUrl` query parameter Kustomer puts on app iframes,
//! reduced to the form `MessageEvent.origin` has (`scheme://host[:port]`, default port left
//! out, lower case), and whether it is one of the allowed Kustomer origins (the page's
//! `<meta name="ccai-kustomer-origins">`, which the gateway writes from its configuration).

use adapter_core::origins;

/// Why the adapter runs standalone (no host features, nothing accepted).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StandaloneReason {
    #[error("the page has no parentUrl parameter")]
    Missing,
    #[error("parentUrl {0:?} is not an http(s) URL with a host")]
    Invalid(String),
    #[error("the page is not in a frame")]
    NotFramed,
    #[error("the host connection cannot be set up: {0}")]
    Unusable(String),
    #[error("the host {origin} is not one of the allowed Kustomer origins ({allowed})")]
    NotAllowed { origin: String, allowed: String },
}

/// The origin of `parent_url`, as `MessageEvent.origin` would give it.
pub fn origin_of(parent_url: &str) -> Result<String, StandaloneReason> {
    let invalid = || StandaloneReason::Invalid(parent_url.chars().take(200).collect());
    let url = parent_url.trim();
    let (scheme, rest) = url.split_once("://").ok_or_else(invalid)?;
    let scheme = scheme.to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "https" => "443",
        "http" => "80",
        _ => return Err(invalid()),
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    // user:password@host is not something a host page URL has; refuse rather than guess.
    if authority.is_empty() || authority.contains('@') || authority.contains('\\') {
        return Err(invalid());
    }
    let (host, port) = match authority.rsplit_once(':') {
        // An IPv6 literal without port, e.g. [::1].
        Some((host, port)) if !port.contains(']') => (host, Some(port)),
        _ => (authority, None),
    };
    let host_ok = !host.is_empty()
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '[' | ']' | ':'));
    if !host_ok {
        return Err(invalid());
    }
    let host = host.to_ascii_lowercase();
    match port {
        None | Some("") => Ok(format!("{scheme}://{host}")),
        Some(port) if port == default_port => Ok(format!("{scheme}://{host}")),
        Some(port) if port.parse::<u16>().is_ok_and(|p| p > 0) => {
            Ok(format!("{scheme}://{host}:{port}"))
        }
        Some(_) => Err(invalid()),
    }
}

/// The host's origin from a page's query string (`?parentUrl=...&id=...`), already
/// percent-decoded by the caller's URL parser: `parent_url` is `None` when absent.
pub fn host_origin(parent_url: Option<&str>) -> Result<String, StandaloneReason> {
    match parent_url {
        None => Err(StandaloneReason::Missing),
        Some(url) if url.trim().is_empty() => Err(StandaloneReason::Missing),
        Some(url) => origin_of(url),
    }
}

/// The host's origin from `parent_url`, when it is one of `allowed`; a host that is not is
/// refused, so the adapter never posts to it.
pub fn allowed_host_origin(
    parent_url: Option<&str>,
    allowed: &[String],
) -> Result<String, StandaloneReason> {
    let origin = host_origin(parent_url)?;
    if origins::is_allowed(allowed, &origin) {
        Ok(origin)
    } else {
        let allowed = if allowed.is_empty() {
            "none configured".to_owned()
        } else {
            allowed.join(" ")
        };
        Err(StandaloneReason::NotAllowed { origin, allowed })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parent_url_to_origin_table() {
        let cases: &[(&str, Result<&str, ()>)] = &[
            (
                "https://acme.kustomerapp.com/app/customers/1",
                Ok("https://acme.kustomerapp.com"),
            ),
            (
                "https://ACME.kustomerapp.com",
                Ok("https://acme.kustomerapp.com"),
            ),
            (
                "HTTPS://acme.kustomerapp.com:443/x",
                Ok("https://acme.kustomerapp.com"),
            ),
            (
                "https://acme.kustomerapp.com:8443/x",
                Ok("https://acme.kustomerapp.com:8443"),
            ),
            ("http://127.0.0.1:8720/", Ok("http://127.0.0.1:8720")),
            ("http://localhost:80/?a=b", Ok("http://localhost")),
            ("http://[::1]:8720/", Ok("http://[::1]:8720")),
            ("http://[::1]/", Ok("http://[::1]")),
            (
                "https://acme.kustomerapp.com#frag",
                Ok("https://acme.kustomerapp.com"),
            ),
            (
                "  https://acme.kustomerapp.com  ",
                Ok("https://acme.kustomerapp.com"),
            ),
            ("javascript:alert(1)", Err(())),
            ("file:///etc/passwd", Err(())),
            ("data:text/html,hi", Err(())),
            ("//acme.kustomerapp.com", Err(())),
            ("https://", Err(())),
            ("https://evil.test@acme.kustomerapp.com/", Err(())),
            ("https://acme.kustomerapp.com:99999/", Err(())),
            ("https://acme.kustomerapp.com:0/", Err(())),
            ("https://acme.kustomerapp.com:x/", Err(())),
            ("https://acme kustomerapp.com/", Err(())),
            ("https://acme.kustomerapp.com\\@evil.test/", Err(())),
            ("*", Err(())),
        ];
        for (input, want) in cases {
            let got = origin_of(input);
            assert_eq!(got.as_deref().map_err(|_| ()), *want, "{input:?}");
        }
    }

    #[test]
    fn missing_or_empty_parent_url_means_standalone() {
        assert_eq!(host_origin(None), Err(StandaloneReason::Missing));
        assert_eq!(host_origin(Some(" ")), Err(StandaloneReason::Missing));
        assert!(matches!(
            host_origin(Some("nope")),
            Err(StandaloneReason::Invalid(_))
        ));
        assert_eq!(
            host_origin(Some("http://127.0.0.1:8720/")).as_deref(),
            Ok("http://127.0.0.1:8720")
        );
    }

    #[test]
    fn only_an_allowed_host_is_taken() {
        let allowed = origins::split_list("https://*.kustomerapp.com http://127.0.0.1:8720");
        let cases: &[(&str, Option<&str>)] = &[
            (
                "https://acme.kustomerapp.com/app/customers/1",
                Some("https://acme.kustomerapp.com"),
            ),
            (
                "http://127.0.0.1:8720/?hostile=1",
                Some("http://127.0.0.1:8720"),
            ),
            ("https://evil.test/", None),
            ("https://kustomerapp.com.evil.test/", None),
            ("https://evil.test/?u=https://acme.kustomerapp.com", None),
            ("http://acme.kustomerapp.com/", None),
            ("http://127.0.0.1:8721/", None),
        ];
        for (parent_url, want) in cases {
            let got = allowed_host_origin(Some(parent_url), &allowed);
            match want {
                Some(origin) => assert_eq!(got.as_deref(), Ok(*origin), "{parent_url}"),
                None => assert!(
                    matches!(got, Err(StandaloneReason::NotAllowed { .. })),
                    "{parent_url}: {got:?}"
                ),
            }
        }
        assert_eq!(
            allowed_host_origin(Some("http://127.0.0.1:8720/"), &[]),
            Err(StandaloneReason::NotAllowed {
                origin: "http://127.0.0.1:8720".into(),
                allowed: "none configured".into()
            })
        );
        assert_eq!(
            allowed_host_origin(None, &allowed),
            Err(StandaloneReason::Missing)
        );
    }
}
