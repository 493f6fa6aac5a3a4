//! The widget's HTML pages (Trunk's `index.html` and `settings/index.html`) as the gateway
//! serves them: the allowed Kustomer origins written into the page's
//! `<meta name="ccai-kustomer-origins">`, so the widget checks its host with no round trip, and
//! the Content-Security-Policy that goes with the page: only those origins may frame it
//! (`frame-ancestors`), and only the page's own scripts run (`'self'`, plus the SHA-256 of each
//! inline script the page carries, read from the page itself).
//!
//! The page is read and hashed each time it is served (a file of about a kilobyte): the hashes
//! always match the page that goes out, even when a new build is copied in while the gateway
//! runs.

use adapter_core::origins::OriginPattern;
use sha2::{Digest, Sha256};

/// The meta tag the widget reads its allowed host origins from (`src/page.rs`).
pub const ORIGINS_META: &str = "ccai-kustomer-origins";

/// A page ready to go out: its HTML and its `Content-Security-Policy`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Page {
    pub html: String,
    pub csp: String,
}

/// `html` with the allowed origins written in, and its CSP. `gateway_host` is the `Host` the
/// page was asked from (`host[:port]`), for the stream's `ws:`/`wss:` in `connect-src`; one
/// that is not a plain host is left out (`'self'` covers the gateway in current browsers).
pub fn prepare(html: &str, origins: &[OriginPattern], gateway_host: Option<&str>) -> Page {
    let hashes: Vec<String> = inline_scripts(html)
        .into_iter()
        .map(|script| script_hash(&script))
        .collect();
    Page {
        html: with_origins_meta(html, origins),
        csp: policy(&hashes, origins, gateway_host),
    }
}

/// The CSP of a widget page whose inline scripts hash to `hashes`.
pub fn policy(hashes: &[String], origins: &[OriginPattern], gateway_host: Option<&str>) -> String {
    let mut script_src = String::from("'self' 'wasm-unsafe-eval'");
    for hash in hashes {
        script_src.push_str(&format!(" '{hash}'"));
    }
    let mut connect_src = String::from("'self'");
    if let Some(host) = gateway_host.filter(|h| is_plain_host(h)) {
        connect_src.push_str(&format!(" ws://{host} wss://{host}"));
    }
    let ancestors = if origins.is_empty() {
        "'none'".to_owned()
    } else {
        origins
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(" ")
    };
    format!(
        "default-src 'self'; script-src {script_src}; style-src 'self'; img-src 'self' data:; \
         font-src 'self'; connect-src {connect_src}; object-src 'none'; base-uri 'none'; \
         form-action 'self'; frame-src 'none'; worker-src 'none'; frame-ancestors {ancestors}"
    )
}

/// `host` or `host:port`, letters, digits, dots, dashes (an IPv6 literal in brackets too):
/// nothing that could end a CSP source list.
fn is_plain_host(host: &str) -> bool {
    !host.is_empty()
        && host.len() <= 255
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']'))
}

/// CSP's `sha256-…` source for one inline script's text, as the browser hashes it (after the
/// HTML parser has turned CR LF and CR into LF).
pub fn script_hash(script: &str) -> String {
    let text = script.replace("\r\n", "\n").replace('\r', "\n");
    format!(
        "sha256-{}",
        crate::base64::encode(&Sha256::digest(text.as_bytes()))
    )
}

/// The text of every `<script>` without a `src`, in order.
pub fn inline_scripts(html: &str) -> Vec<String> {
    let lower = html.to_ascii_lowercase();
    let mut found = Vec::new();
    let mut from = 0;
    while let Some(at) = lower[from..].find("<script") {
        let open = from + at;
        let Some(open_end) = lower[open..].find('>').map(|e| open + e + 1) else {
            break;
        };
        let Some(close) = lower[open_end..].find("</script").map(|e| open_end + e) else {
            break;
        };
        let tag = &lower[open..open_end];
        let has_src = tag
            .split(|c: char| c.is_ascii_whitespace())
            .any(|attribute| attribute.starts_with("src="));
        if !has_src {
            found.push(html[open_end..close].to_owned());
        }
        from = close;
    }
    found
}

/// The page with `<meta name="ccai-kustomer-origins" content="…">` set to `origins`
/// (space-separated): the page's own tag of that name replaced (its `name` quoted or not, as a
/// minified page writes it), or one added at the top of `<head>` (after `<html>` when the head's
/// tags are implied, as in a minified page).
pub fn with_origins_meta(html: &str, origins: &[OriginPattern]) -> String {
    let content = origins
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(" ");
    // Origins are checked to be plain scheme://host[:port], so nothing here needs escaping;
    // escaped anyway, in case that check ever loosens.
    let content = content
        .replace('&', "&amp;")
        .replace('"', "&quot;")
        .replace('<', "&lt;")
        .replace('>', "&gt;");
    let tag = format!(r#"<meta name="{ORIGINS_META}" content="{content}" />"#);
    let lower = html.to_ascii_lowercase();
    if let Some((start, end)) = own_meta(&lower) {
        return format!("{}{tag}{}", &html[..start], &html[end..]);
    }
    match tag_end(&lower, "<head").or_else(|| tag_end(&lower, "<html")) {
        Some(after) => format!("{}\n    {tag}{}", &html[..after], &html[after..]),
        None => format!("{tag}\n{html}"),
    }
}

/// Where the page's own `<meta name="ccai-kustomer-origins" …>` starts and ends, in `lower` (the
/// page in lower case).
fn own_meta(lower: &str) -> Option<(usize, usize)> {
    let mut from = 0;
    while let Some(at) = lower[from..].find("<meta") {
        let start = from + at;
        let end = start + lower[start..].find('>')? + 1;
        let tag = &lower[start..end];
        let named = [
            format!(r#"name="{ORIGINS_META}""#),
            format!("name='{ORIGINS_META}'"),
        ]
        .iter()
        .any(|quoted| tag.contains(quoted.as_str()))
            || tag
                .match_indices(&format!("name={ORIGINS_META}"))
                .any(|(at, found)| {
                    let after = tag[at + found.len()..].chars().next();
                    after.is_some_and(|c| c.is_ascii_whitespace() || c == '>' || c == '/')
                });
        if named {
            return Some((start, end));
        }
        from = end;
    }
    None
}

/// Just after the first `<{name}>` or `<{name} …>` tag of `lower` (not a longer name such as
/// `<header>` for `<head`).
fn tag_end(lower: &str, name: &str) -> Option<usize> {
    let mut from = 0;
    while let Some(at) = lower[from..].find(name) {
        let start = from + at;
        let next = lower[start + name.len()..].chars().next()?;
        if next == '>' || next.is_ascii_whitespace() {
            return Some(start + lower[start..].find('>')? + 1);
        }
        from = start + name.len();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origins(list: &[&str]) -> Vec<OriginPattern> {
        list.iter()
            .map(|o| OriginPattern::parse(o).unwrap())
            .collect()
    }

    #[test]
    fn an_inline_script_hash_is_the_one_browsers_compute() {
        // `printf 'alert(1)' | openssl dgst -sha256 -binary | base64`
        assert_eq!(
            script_hash("alert(1)"),
            "sha256-bhHHL3z2vDgxUt0W3dWQOrprscmda2Y5pLsLg4GF+pI="
        );
        assert_eq!(script_hash("a\r\nb"), script_hash("a\nb"));
    }

    #[test]
    fn only_scripts_without_src_are_inline() {
        let html = r#"<head><script src="/a.js"></script><SCRIPT type="module">
import init from '/x.js';
</SCRIPT><script>b()</script></head>"#;
        assert_eq!(
            inline_scripts(html),
            ["\nimport init from '/x.js';\n", "b()"]
        );
        assert!(inline_scripts("<script>unclosed").is_empty());
    }

    #[test]
    fn the_allowed_origins_replace_the_pages_own_meta_or_are_added() {
        let allowed = origins(&["https://*.kustomerapp.com", "http://127.0.0.1:8720"]);
        let own = r#"<head><meta name="ccai-kustomer-origins" content="https://old.example" /><title>x</title></head>"#;
        assert_eq!(
            with_origins_meta(own, &allowed),
            r#"<head><meta name="ccai-kustomer-origins" content="https://*.kustomerapp.com http://127.0.0.1:8720" /><title>x</title></head>"#
        );
        let none = "<html><head lang=\"en\"><title>x</title></head></html>";
        let added = with_origins_meta(none, &allowed);
        assert!(
            added.starts_with("<html><head lang=\"en\">\n    <meta name=\"ccai-kustomer-origins\""),
            "{added}"
        );
        assert!(added.ends_with("<title>x</title></head></html>"));
    }

    #[test]
    fn a_minified_pages_own_meta_is_replaced_and_an_implied_head_gets_one_after_html() {
        let allowed = origins(&["https://*.kustomerapp.com"]);
        let want = r#"<meta name="ccai-kustomer-origins" content="https://*.kustomerapp.com" />"#;
        // As Trunk's minifier writes the page: no quotes, no content, no <head>.
        let own = "<!doctype html><html lang=en><meta charset=utf-8><meta name=ccai-kustomer-origins><title>x</title>";
        assert_eq!(
            with_origins_meta(own, &allowed),
            format!("<!doctype html><html lang=en><meta charset=utf-8>{want}<title>x</title>")
        );
        let later = "<html><meta content=x name=ccai-kustomer-origins><p>";
        assert_eq!(
            with_origins_meta(later, &allowed),
            format!("<html>{want}<p>")
        );
        // Another tag whose name only starts the same is not the page's own.
        let other =
            "<!doctype html><html lang=en><meta name=ccai-kustomer-origins-old content=x><header>";
        assert_eq!(
            with_origins_meta(other, &allowed),
            format!("<!doctype html><html lang=en>\n    {want}<meta name=ccai-kustomer-origins-old content=x><header>")
        );
    }

    #[test]
    fn the_policy_pins_framing_scripts_and_connections() {
        let page = prepare(
            "<head></head><script type=\"module\">alert(1)</script>",
            &origins(&["https://*.kustomerapp.com"]),
            Some("127.0.0.1:8700"),
        );
        let directives: Vec<&str> = page.csp.split("; ").collect();
        for want in [
            "default-src 'self'",
            "script-src 'self' 'wasm-unsafe-eval' 'sha256-bhHHL3z2vDgxUt0W3dWQOrprscmda2Y5pLsLg4GF+pI='",
            "connect-src 'self' ws://127.0.0.1:8700 wss://127.0.0.1:8700",
            "object-src 'none'",
            "base-uri 'none'",
            "frame-ancestors https://*.kustomerapp.com",
        ] {
            assert!(directives.contains(&want), "{want} in {}", page.csp);
        }
        assert!(!page.csp.contains("unsafe-inline"));
        // A Host that would smuggle a directive in is left out.
        let odd = policy(&[], &[], Some("evil.test; script-src *"));
        assert!(odd.contains("connect-src 'self';"), "{odd}");
        assert!(odd.ends_with("frame-ancestors 'none'"), "{odd}");
    }
}
