//! Who is asking: the signed-in agent of a request (`Authorization: Bearer <token>`), the one
//! admin check, and the client's address (for throttles).

use axum::{
    extract::FromRequestParts,
    http::{header, request::Parts},
};

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

/// The TCP peer's address, when the server was started with connection info (it is, in
/// [`crate::Gateway::serve`]). Headers such as `X-Forwarded-For` are not read: a client could
/// write anything there.
pub struct ClientAddr(pub Option<std::net::IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(ClientAddr(
            parts
                .extensions
                .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
                .map(|info| info.0.ip()),
        ))
    }
}
