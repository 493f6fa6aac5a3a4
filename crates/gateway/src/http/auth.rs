//! Who is asking: the signed-in agent of a request (`Authorization: Bearer <token>`), the one
//! admin check, and the client's address (for throttles; behind trusted proxies, the one their
//! `X-Forwarded-For` names).

use std::net::IpAddr;

use axum::{
    extract::FromRequestParts,
    http::{header, request::Parts, HeaderValue},
};
use ipnet::IpNet;

use crate::{
    error::{Code, Error},
    sessions::Session,
    AppState,
};

/// The signed-in agent of a request, and its token.
pub struct SignedIn {
    pub session: Session,
    pub token: String,
}

impl FromRequestParts<AppState> for SignedIn {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Error> {
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                Error::new(
                    Code::Unauthenticated,
                    "Sign in to the contact center first.",
                )
            })?;
        let session = live_session(state, token)
            .await?
            .ok_or_else(Error::session_expired)?;
        Ok(SignedIn {
            session,
            token: token.to_owned(),
        })
    }
}

/// The live session of `token`, if its agent may still sign in: an agent taken out of the
/// agents file is out at once, on every endpoint and stream, not at the session's end.
pub async fn live_session(
    state: &AppState,
    token: &str,
) -> Result<Option<Session>, crate::store::StoreError> {
    Ok(state
        .sessions
        .find(token)
        .await?
        .filter(|session| state.directory.lists(&session.agent_email)))
}

/// A signed-in agent listed in `--admin-emails`; anyone else gets `403 admins_only`.
pub struct Admin(pub SignedIn);

impl FromRequestParts<AppState> for Admin {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Error> {
        let signed_in = SignedIn::from_request_parts(parts, state).await?;
        if state.config.is_admin(&signed_in.session.agent_email) {
            Ok(Admin(signed_in))
        } else {
            Err(Error::new(
                Code::AdminsOnly,
                "Only the adapter's administrators can do this.",
            ))
        }
    }
}

/// The client's address, for throttles and caps: the TCP peer's (the server is started with
/// connection info, in [`crate::Gateway::serve`]), or, when the peer is one of the
/// `--trusted-proxies`, the address their `X-Forwarded-For` names ([`forwarded_client`]).
/// From anyone else the header is ignored: a client could write anything there.
pub struct ClientAddr(pub Option<IpAddr>);

impl FromRequestParts<AppState> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        Ok(client_addr(state, &parts.extensions, &parts.headers))
    }
}

/// [`ClientAddr`] of a request's extensions and headers.
pub fn client_addr(
    state: &AppState,
    extensions: &axum::http::Extensions,
    headers: &axum::http::HeaderMap,
) -> ClientAddr {
    let peer = extensions
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|info| info.0.ip());
    ClientAddr(peer.map(|peer| {
        forwarded_client(
            peer,
            headers.get_all("x-forwarded-for").iter(),
            &state.config.trusted_proxies,
        )
    }))
}

/// The client behind `peer`: `peer` itself unless it is a trusted proxy; else the rightmost
/// address of `X-Forwarded-For` (all its headers, in order) that is not a trusted proxy, each
/// proxy having appended the address it saw. Entries left of it were written by the client
/// and are never believed. An entry that does not read as an address ends the walk at the
/// last trusted hop (the throttles then count that proxy, never a made-up address).
pub fn forwarded_client<'a>(
    peer: IpAddr,
    forwarded_for: impl DoubleEndedIterator<Item = &'a HeaderValue>,
    trusted: &[IpNet],
) -> IpAddr {
    let is_trusted = |address: &IpAddr| trusted.iter().any(|net| net.contains(address));
    if !is_trusted(&peer) {
        return peer;
    }
    let mut client = peer;
    for value in forwarded_for.rev() {
        let Ok(text) = value.to_str() else {
            return client;
        };
        for entry in text.rsplit(',') {
            match entry.trim().parse::<IpAddr>() {
                Ok(address) if is_trusted(&address) => client = address,
                Ok(address) => return address,
                Err(_) => return client,
            }
        }
    }
    client
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(peer: &str, headers: &[&str], trusted: &[&str]) -> String {
        let values: Vec<HeaderValue> = headers
            .iter()
            .map(|h| HeaderValue::from_str(h).unwrap())
            .collect();
        let trusted: Vec<IpNet> = trusted.iter().map(|t| t.parse().unwrap()).collect();
        forwarded_client(peer.parse().unwrap(), values.iter(), &trusted).to_string()
    }

    #[test]
    fn the_forwarded_address_is_believed_only_from_trusted_proxies() {
        // No trusted proxies, or a peer that is not one: the header is the client's own words.
        assert_eq!(client("203.0.113.9", &["198.51.100.1"], &[]), "203.0.113.9");
        assert_eq!(
            client("203.0.113.9", &["198.51.100.1"], &["10.0.0.0/8"]),
            "203.0.113.9"
        );
        // Behind the load balancer: the address it appended.
        assert_eq!(
            client("10.0.0.2", &["198.51.100.1"], &["10.0.0.0/8"]),
            "198.51.100.1"
        );
        // A client that writes its own header gets its real address all the same.
        assert_eq!(
            client("10.0.0.2", &["1.2.3.4, 198.51.100.1"], &["10.0.0.0/8"]),
            "198.51.100.1"
        );
        // Two proxies (one header each, or one list): past every trusted hop.
        assert_eq!(
            client(
                "10.0.0.2",
                &["1.2.3.4, 198.51.100.1", "10.0.0.7"],
                &["10.0.0.0/8"]
            ),
            "198.51.100.1"
        );
        assert_eq!(
            client("10.0.0.2", &["2001:db8::5, 10.0.0.7"], &["10.0.0.0/8"]),
            "2001:db8::5"
        );
        // Nothing forwarded, or nothing readable: the last trusted hop, never a made-up one.
        assert_eq!(client("10.0.0.2", &[], &["10.0.0.0/8"]), "10.0.0.2");
        assert_eq!(
            client("10.0.0.2", &["1.2.3.4, bogus, 10.0.0.7"], &["10.0.0.0/8"]),
            "10.0.0.7"
        );
        assert_eq!(
            client("10.0.0.2", &["1.2.3.4, bogus"], &["10.0.0.0/8"]),
            "10.0.0.2"
        );
        // A single trusted address.
        assert_eq!(
            client("127.0.0.1", &["198.51.100.1"], &["127.0.0.1/32"]),
            "198.51.100.1"
        );
    }
}
