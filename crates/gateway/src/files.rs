//! Downloads of the files the CCAI Platform points to (call recordings, voicemails, shared
//! files), before the CRM sync uploads them to Kustomer. A file URL comes from upstream data,
//! so it is treated as hostile: only the tenant's own host and the hosts an operator lists
//! (`--file-hosts`) are fetched; a redirect is followed only to such a host; private, loopback
//! and link-local addresses (cloud metadata among them) are refused, by name and after DNS
//! resolution, unless the tenant itself is on loopback (the demo's simulator); and the size cap
//! is enforced while the body streams in, not after.

use std::{
    net::{IpAddr, SocketAddr},
    sync::Arc,
    time::Duration,
};

use crate::kustomer::KustomerError;

/// The largest file the gateway downloads (Kustomer's attachments are capped below this).
pub const MAX_FILE_BYTES: usize = crate::kustomer::MAX_FILE_BYTES;

/// Redirects followed at most.
const MAX_REDIRECTS: usize = 3;

/// Which files may be fetched.
#[derive(Clone, Debug)]
pub struct FilePolicy {
    /// Host names (lowercase), the tenant's first.
    hosts: Vec<String>,
    /// Whether private and loopback addresses may be reached (the demo only).
    private_allowed: bool,
}

impl FilePolicy {
    /// The tenant at `ccai_url` and the `extra` hosts; private addresses only when the tenant
    /// is on loopback.
    pub fn new(ccai_url: &str, extra: &[String]) -> Self {
        let tenant = reqwest::Url::parse(ccai_url)
            .ok()
            .and_then(|url| url.host_str().map(str::to_lowercase));
        let hosts = tenant
            .into_iter()
            .chain(
                extra
                    .iter()
                    .map(|h| h.trim().to_lowercase())
                    .filter(|h| !h.is_empty()),
            )
            .collect();
        FilePolicy {
            hosts,
            private_allowed: crate::config::url_is_loopback(ccai_url),
        }
    }

    /// Why `url` may not be fetched, if it may not.
    pub fn refusal(&self, url: &reqwest::Url) -> Option<String> {
        if !matches!(url.scheme(), "https" | "http") {
            return Some("not an http(s) URL".into());
        }
        if url.scheme() == "http" && !self.private_allowed {
            return Some("not an https URL".into());
        }
        let Some(host) = url.host_str().map(str::to_lowercase) else {
            return Some("the URL has no host".into());
        };
        if !self.hosts.contains(&host) {
            return Some(format!(
                "{host} is neither the tenant's host nor one of --file-hosts"
            ));
        }
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        if let Ok(ip) = bare.parse::<IpAddr>() {
            if !self.private_allowed && !is_public(ip) {
                return Some(format!("{ip} is a private address"));
            }
        }
        None
    }
}

/// Whether `ip` is an address of the public internet (not loopback, private, link-local,
/// shared, documentation, multicast or unspecified).
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || a == 0
                // 100.64.0.0/10, carrier-grade NAT
                || (a == 100 && (64..128).contains(&b))
                // 198.18.0.0/15, benchmarking
                || (a == 198 && (b == 18 || b == 19)))
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                // fc00::/7 unique local, fe80::/10 link-local
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80)
        }
    }
}

/// Resolves names as the system does, then drops every address that is not public: a host
/// name that points inside the network (or is made to, between two look-ups) reaches nothing.
struct PublicOnly;

impl reqwest::dns::Resolve for PublicOnly {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let all: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let public: Vec<SocketAddr> = all.into_iter().filter(|a| is_public(a.ip())).collect();
            if public.is_empty() {
                return Err(format!("{host} resolves to no public address").into());
            }
            let addrs: reqwest::dns::Addrs = Box::new(public.into_iter());
            Ok(addrs)
        })
    }
}

/// Fetches files under a [`FilePolicy`].
#[derive(Clone, Debug)]
pub struct Downloads {
    http: reqwest::Client,
    policy: Arc<FilePolicy>,
}

impl Downloads {
    pub fn new(policy: FilePolicy, timeout: Duration) -> Result<Self, KustomerError> {
        let policy = Arc::new(policy);
        let for_redirects = Arc::clone(&policy);
        let mut builder = reqwest::Client::builder().timeout(timeout).redirect(
            reqwest::redirect::Policy::custom(move |attempt| {
                if attempt.previous().len() >= MAX_REDIRECTS {
                    return attempt.error("too many redirects");
                }
                match for_redirects.refusal(attempt.url()) {
                    Some(why) => attempt.error(format!("redirected to a refused URL: {why}")),
                    None => attempt.follow(),
                }
            }),
        );
        if !policy.private_allowed {
            builder = builder.dns_resolver(Arc::new(PublicOnly));
        }
        let http = builder
            .build()
            .map_err(|e| KustomerError::Network(e.to_string()))?;
        Ok(Downloads { http, policy })
    }

    /// The file at `url`, at most [`MAX_FILE_BYTES`], read as it streams in.
    pub async fn fetch(&self, url: &str) -> Result<Vec<u8>, KustomerError> {
        let parsed = reqwest::Url::parse(url)
            .map_err(|_| KustomerError::Rejected("the file's URL does not parse".into()))?;
        if let Some(why) = self.policy.refusal(&parsed) {
            tracing::warn!(reason = %why, "file download refused");
            return Err(KustomerError::Rejected(format!(
                "the file's URL is refused: {why}"
            )));
        }
        let mut response = self.http.get(parsed).send().await.map_err(|e| {
            // A refused redirect or address is not going to work on a retry.
            if e.is_redirect() || e.is_connect() && is_refused_address(&e) {
                KustomerError::Rejected(format!("the file is refused: {}", chain(&e)))
            } else {
                KustomerError::File(chain(&e))
            }
        })?;
        if !response.status().is_success() {
            return Err(KustomerError::File(format!(
                "HTTP {}",
                response.status().as_u16()
            )));
        }
        let too_large = || KustomerError::Rejected("the file is larger than 20 MB".into());
        if response
            .content_length()
            .is_some_and(|l| l > MAX_FILE_BYTES as u64)
        {
            return Err(too_large());
        }
        let mut bytes = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| KustomerError::File(chain(&e)))?
        {
            if bytes.len() + chunk.len() > MAX_FILE_BYTES {
                return Err(too_large());
            }
            bytes.extend_from_slice(&chunk);
        }
        if bytes.is_empty() {
            return Err(KustomerError::Rejected("the file is empty".into()));
        }
        Ok(bytes)
    }
}

/// A reqwest error and its causes, without the URL (it can carry a signed query).
fn chain(error: &reqwest::Error) -> String {
    let mut text = String::from(if error.is_redirect() {
        "redirect refused"
    } else if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "cannot connect"
    } else {
        "download failed"
    });
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

fn is_refused_address(error: &reqwest::Error) -> bool {
    chain(error).contains("resolves to no public address")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> reqwest::Url {
        reqwest::Url::parse(s).unwrap()
    }

    #[test]
    fn only_the_tenant_and_listed_hosts_over_https() {
        let policy = FilePolicy::new(
            "https://acme.uc1.ccaiplatform.com",
            &["Storage.GoogleAPIs.com".into()],
        );
        assert_eq!(
            policy.refusal(&url("https://acme.uc1.ccaiplatform.com/rec/1.mp3")),
            None
        );
        assert_eq!(
            policy.refusal(&url("https://storage.googleapis.com/b/1.mp3")),
            None
        );
        assert!(policy.refusal(&url("https://evil.example/1.mp3")).is_some());
        assert!(policy
            .refusal(&url("http://acme.uc1.ccaiplatform.com/1.mp3"))
            .is_some());
        assert!(policy.refusal(&url("file:///etc/passwd")).is_some());
    }

    #[test]
    fn private_addresses_are_refused_unless_the_tenant_is_on_loopback() {
        let real = FilePolicy::new("https://10.0.0.5", &["169.254.169.254".into()]);
        assert!(real.refusal(&url("https://10.0.0.5/x")).is_some());
        assert!(real
            .refusal(&url("https://169.254.169.254/latest/meta-data"))
            .is_some());
        let demo = FilePolicy::new("http://127.0.0.1:8710", &[]);
        assert_eq!(demo.refusal(&url("http://127.0.0.1:8710/rec/1")), None);
        assert!(demo.refusal(&url("http://127.0.0.2:8710/rec/1")).is_some());
    }

    #[test]
    fn public_means_public() {
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:10.0.0.1",
        ] {
            assert!(!is_public(private.parse().unwrap()), "{private}");
        }
        for public in ["8.8.8.8", "142.250.1.1", "2a00:1450:4007::1"] {
            assert!(is_public(public.parse().unwrap()), "{public}");
        }
    }
}
