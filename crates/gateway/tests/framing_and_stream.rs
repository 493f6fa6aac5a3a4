//! Attacks on the widget's page and on the event stream, tried against the real gateway on
//! loopback (the simulator as its CCAI tenant), each test named after the attack: a page of
//! another origin framing the widget, a session token in the stream's URL, a stream that never
//! authenticates, oversized client frames, and a flood of streams per agent and per address.

use std::time::Duration;

use adapter_core::agent_events::StreamAuth;
use adapter_core::origins::OriginPattern;
use futures_util::{SinkExt, StreamExt};
use tokio::io::AsyncWriteExt;
use tokio_tungstenite::tungstenite::Message;

mod support;

use support::{
    authenticate, connect_stream, open_stream, sign_in, stream_close, stream_next, stream_url,
    Socket, StreamNext,
};

const AGENT: &str = "grace.hopper@example.com";

/// The inline loader script of the test page, as Trunk writes one.
const LOADER: &str = "\nimport init from '/app.js';\nawait init();\n";

/// A built widget in a temporary folder: both pages (each with Trunk's inline loader) and a
/// script.
fn widget_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("adapter-widget-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("settings")).unwrap();
    let page = |title: &str| {
        format!(
            "<!DOCTYPE html>\n<html><head>\n<meta charset=\"utf-8\" />\n\
             <meta name=\"ccai-kustomer-origins\" content=\"\" />\n<title>{title}</title>\n\
             <script type=\"module\">{LOADER}</script></head><body></body></html>\n"
        )
    };
    std::fs::write(dir.join("index.html"), page("adapter")).unwrap();
    std::fs::write(dir.join("settings/index.html"), page("settings")).unwrap();
    std::fs::write(
        dir.join("app.js"),
        "export default async function init() {}\n",
    )
    .unwrap();
    dir
}

fn directive<'a>(csp: &'a str, name: &str) -> Option<&'a str> {
    csp.split(';')
        .map(str::trim)
        .find_map(|d| d.strip_prefix(name).map(str::trim))
}

#[tokio::test]
async fn a_page_of_another_origin_framing_the_widget_is_refused_by_frame_ancestors() {
    let widget = widget_dir("framing");
    let stack = support::Start::new("framing")
        .run(|config| {
            config.widget_dir = Some(widget.clone());
            config.kustomer_origins = vec![
                OriginPattern::parse("https://*.kustomerapp.com").unwrap(),
                OriginPattern::parse("http://127.0.0.1:8720").unwrap(),
            ];
        })
        .await;
    let client = reqwest::Client::new();
    let loader_hash = format!("'sha256-{}'", {
        use sha2::Digest;
        base64_of(&sha2::Sha256::digest(LOADER.as_bytes()))
    });
    for (path, title) in [
        ("/", "adapter"),
        ("/index.html", "adapter"),
        ("/settings/", "settings"),
        ("/settings/index.html", "settings"),
    ] {
        let page = client
            .get(format!("{}{path}", stack.gateway_url()))
            .send()
            .await
            .unwrap();
        assert_eq!(page.status(), 200, "{path}");
        let csp = page.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .to_owned();
        // Only the configured Kustomer origins may frame it: the browser blocks any other page.
        assert_eq!(
            directive(&csp, "frame-ancestors"),
            Some("https://*.kustomerapp.com http://127.0.0.1:8720"),
            "{path}: {csp}"
        );
        let scripts = directive(&csp, "script-src").unwrap();
        assert!(
            scripts.starts_with("'self' 'wasm-unsafe-eval'") && scripts.contains(&loader_hash),
            "{path}: the page's own loader runs, by its hash: {csp}"
        );
        assert!(!csp.contains("unsafe-inline"), "{path}: {csp}");
        assert_eq!(directive(&csp, "object-src"), Some("'none'"));
        assert_eq!(directive(&csp, "base-uri"), Some("'none'"));
        let html = page.text().await.unwrap();
        assert!(html.contains(&format!("<title>{title}</title>")), "{path}");
        // The widget reads the same list, with no round trip.
        assert!(
            html.contains(r#"<meta name="ccai-kustomer-origins" content="https://*.kustomerapp.com http://127.0.0.1:8720" />"#),
            "{path}: {html}"
        );
        assert_eq!(html.matches("ccai-kustomer-origins").count(), 1, "{path}");
    }
    // The rest of the build carries the same framing rule, with no inline script allowed.
    let script = client
        .get(format!("{}/app.js", stack.gateway_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(script.status(), 200);
    let csp = script.headers()["content-security-policy"]
        .to_str()
        .unwrap();
    assert_eq!(
        directive(csp, "frame-ancestors"),
        Some("https://*.kustomerapp.com http://127.0.0.1:8720")
    );
    assert_eq!(
        directive(csp, "script-src"),
        Some("'self' 'wasm-unsafe-eval'")
    );
}

/// Standard base64, as CSP writes hashes.
fn base64_of(bytes: &[u8]) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut bits = String::new();
    for byte in bytes {
        bits.push_str(&format!("{byte:08b}"));
    }
    while !bits.len().is_multiple_of(6) {
        bits.push('0');
    }
    let mut out: String = bits
        .as_bytes()
        .chunks(6)
        .map(|six| {
            let index = usize::from_str_radix(std::str::from_utf8(six).unwrap(), 2).unwrap();
            char::from(ALPHABET[index])
        })
        .collect();
    while !out.len().is_multiple_of(4) {
        out.push('=');
    }
    out
}

#[tokio::test]
async fn a_session_token_in_the_stream_url_is_refused() {
    let stack = support::Start::new("token-in-url").run(|_| {}).await;
    let token = sign_in(&stack.gateway_url(), AGENT).await;
    for query in [
        format!("token={token}"),
        format!("browser=b&token={token}&epoch=1&after=1"),
    ] {
        let url = format!("{}?{query}", stream_url(&stack.gateway_url()));
        match tokio_tungstenite::connect_async(url).await {
            Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
                assert_eq!(response.status(), 400, "{query}");
                let body = String::from_utf8_lossy(response.body().as_deref().unwrap_or_default())
                    .into_owned();
                assert!(body.contains("first message"), "{body}");
                assert!(!body.contains(&token), "the answer does not echo the token");
            }
            other => panic!("{query}: expected a 400, got {:?}", other.map(|_| ())),
        }
    }
    // The same token in the first message opens the stream.
    let mut socket = open_stream(&stack.gateway_url(), &token).await;
    match stream_next(&mut socket, Duration::from_secs(5)).await {
        StreamNext::Message(message) => assert_eq!(message["type"], "snapshot"),
        other => panic!("expected the snapshot, got {other:?}"),
    }
}

#[tokio::test]
async fn a_stream_that_never_authenticates_is_closed_with_4002() {
    let stack = support::Start::new("no-auth").run(|_| {}).await;
    let started = tokio::time::Instant::now();
    let mut silent = connect_stream(&stack.gateway_url()).await;
    let closed = stream_close(&mut silent, Duration::from_secs(10)).await;
    assert_eq!(
        closed.as_ref().map(|(code, _)| *code),
        Some(4002),
        "{closed:?}"
    );
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(4_500) && waited < Duration::from_secs(8),
        "the gateway waits about 5 s for the auth message, not {waited:?}"
    );
    // A first message that is not an auth message is refused at once.
    let mut wrong = connect_stream(&stack.gateway_url()).await;
    wrong
        .send(Message::Text(r#"{"type":"hello"}"#.into()))
        .await
        .unwrap();
    let closed = stream_close(&mut wrong, Duration::from_secs(2)).await;
    assert_eq!(closed.map(|(code, _)| code), Some(4002));
}

/// Writes a frame header announcing a `len`-byte masked text frame, straight onto the socket's
/// connection, then `sent` bytes of its payload (the rest never comes).
async fn announce_frame(socket: &mut Socket, len: u64, sent: usize) {
    let mut header = vec![0x81, 0x80 | 127];
    header.extend_from_slice(&len.to_be_bytes());
    header.extend_from_slice(&[1, 2, 3, 4]);
    let tcp = match socket.get_mut() {
        tokio_tungstenite::MaybeTlsStream::Plain(tcp) => tcp,
        _ => unreachable!("loopback is plain TCP"),
    };
    tcp.write_all(&header).await.unwrap();
    // Best effort: the gateway may have closed the connection already.
    let _ = tcp.write_all(&vec![b'x'; sent]).await;
    let _ = tcp.flush().await;
}

/// This process's resident memory, in kilobytes (the gateway runs in it).
fn resident_kb() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

#[tokio::test]
async fn an_oversized_client_frame_closes_the_stream_unread_and_memory_does_not_grow() {
    let stack = support::Start::new("oversized").run(|_| {}).await;
    let token = sign_in(&stack.gateway_url(), AGENT).await;

    // After the auth: a message just over the cap closes the stream with 1009.
    let mut socket = open_stream(&stack.gateway_url(), &token).await;
    assert!(matches!(
        stream_next(&mut socket, Duration::from_secs(5)).await,
        StreamNext::Message(_)
    ));
    socket
        .send(Message::Text("x".repeat(5 * 1024).into()))
        .await
        .unwrap();
    let closed = stream_close(&mut socket, Duration::from_secs(5)).await;
    assert_eq!(closed.map(|(code, _)| code), Some(1009));

    // Ten 15 MB frames announced, as the first message and after the auth: each stream closes
    // with 1009 when only 64 KB of the payload has been sent, so the gateway read the header
    // and no further (it could not have buffered what was never sent).
    let before = resident_kb();
    let mut sockets = Vec::new();
    for i in 0..10 {
        let mut socket = connect_stream(&stack.gateway_url()).await;
        if i % 2 == 1 {
            authenticate(&mut socket, &StreamAuth::new(token.clone(), None, None)).await;
            assert!(matches!(
                stream_next(&mut socket, Duration::from_secs(5)).await,
                StreamNext::Message(_)
            ));
        }
        announce_frame(&mut socket, 15 * 1024 * 1024, 64 * 1024).await;
        sockets.push(socket);
    }
    for (i, socket) in sockets.iter_mut().enumerate() {
        let closed = read_close(socket, Duration::from_secs(5)).await;
        assert_eq!(closed, Some(1009), "stream {i}");
    }
    let grown_mb = resident_kb().saturating_sub(before) / 1024;
    assert!(
        grown_mb < 32,
        "10 announced 15 MB frames grew the process by {grown_mb} MB"
    );
}

/// The close code the stream ends with (messages skipped); `None` when the connection ended
/// without one or broke.
async fn read_close(socket: &mut Socket, within: Duration) -> Option<u16> {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match tokio::time::timeout(left, socket.next()).await {
            Err(_) => panic!("no close within {within:?}"),
            Ok(Some(Ok(Message::Close(frame)))) => return frame.map(|f| u16::from(f.code)),
            Ok(Some(Ok(_))) => {}
            Ok(None) | Ok(Some(Err(_))) => return None,
        }
    }
}

#[tokio::test]
async fn the_stream_after_an_agents_cap_is_refused_with_4029_until_one_closes() {
    let stack = support::Start::new("agent-cap")
        .run(|config| config.max_streams_per_agent = 3)
        .await;
    let token = sign_in(&stack.gateway_url(), AGENT).await;
    let mut open = Vec::new();
    for _ in 0..3 {
        let mut socket = open_stream(&stack.gateway_url(), &token).await;
        assert!(matches!(
            stream_next(&mut socket, Duration::from_secs(5)).await,
            StreamNext::Message(_)
        ));
        open.push(socket);
    }
    // The fourth stream of the same agent, even from another session of theirs.
    let other_session = sign_in(&stack.gateway_url(), AGENT).await;
    for token in [&token, &other_session] {
        let mut refused = open_stream(&stack.gateway_url(), token).await;
        let closed = stream_close(&mut refused, Duration::from_secs(5)).await;
        let (code, reason) = closed.expect("a close frame");
        assert_eq!(code, 4029);
        assert!(reason.contains("agent"), "{reason}");
    }
    // Another agent is not held up.
    let other_agent = sign_in(&stack.gateway_url(), "alan.turing@example.com").await;
    let mut socket = open_stream(&stack.gateway_url(), &other_agent).await;
    assert!(matches!(
        stream_next(&mut socket, Duration::from_secs(5)).await,
        StreamNext::Message(_)
    ));
    // One of the three closes: a stream can open again (once the gateway has seen the close).
    let mut first = open.remove(0);
    first.close(None).await.unwrap();
    support::eventually("a stream opens again", Duration::from_secs(5), || {
        let (gateway, token) = (stack.gateway_url(), token.clone());
        async move {
            let mut socket = open_stream(&gateway, &token).await;
            match stream_next(&mut socket, Duration::from_secs(5)).await {
                StreamNext::Message(message) => Ok(message),
                closed => Err(format!("{closed:?}")),
            }
        }
    })
    .await;
}

#[tokio::test]
async fn the_connection_after_an_addresss_cap_is_refused_with_4029_before_it_authenticates() {
    let stack = support::Start::new("address-cap")
        .run(|config| config.max_streams_per_address = 4)
        .await;
    // Four connections that never authenticate hold the address's four places.
    let mut waiting = Vec::new();
    for _ in 0..4 {
        waiting.push(connect_stream(&stack.gateway_url()).await);
    }
    let token = sign_in(&stack.gateway_url(), AGENT).await;
    let mut refused = open_stream(&stack.gateway_url(), &token).await;
    let started = tokio::time::Instant::now();
    let (code, reason) = stream_close(&mut refused, Duration::from_secs(3))
        .await
        .expect("a close frame");
    assert_eq!(code, 4029);
    assert!(reason.contains("address"), "{reason}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "refused at once, not after the auth wait"
    );
    // The gateway still answers its health check meanwhile.
    let health = reqwest::get(format!("{}/healthz", stack.gateway_url()))
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    // The waiting ones are closed after their auth wait, and give their places back.
    for socket in &mut waiting {
        let closed = stream_close(socket, Duration::from_secs(10)).await;
        assert_eq!(closed.map(|(code, _)| code), Some(4002));
    }
    support::eventually("a stream opens again", Duration::from_secs(5), || {
        let (gateway, token) = (stack.gateway_url(), token.clone());
        async move {
            let mut socket = open_stream(&gateway, &token).await;
            match stream_next(&mut socket, Duration::from_secs(5)).await {
                StreamNext::Message(message) => Ok(message),
                closed => Err(format!("{closed:?}")),
            }
        }
    })
    .await;
}
