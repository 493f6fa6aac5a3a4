//! Sign-in: who may become which agent. The email must be the Kustomer user's the host reports,
//! the password must match when an agents file is configured, the CCAI tenant must know the
//! agent, and Kustomer must name the agent's user (never the id a browser sends). The session
//! itself is [`crate::sessions`]'.
//!
//! Attempts are throttled before anything costly runs: per client address (every attempt) and
//! per email (wrong passwords), answered `429 too_many_attempts` with `Retry-After`.

use crate::{
    ccai::CcaiApi,
    error::{Code, Error},
    sessions::Issued,
    AppState,
};

/// A sign-in (`POST /api/v1/sessions`). Of the Kustomer user the host says is signed in, only
/// the email is read, to tell an agent who signed in to Kustomer with another account. The `id`
/// the widget also sends is accepted and ignored: who the agent is in Kustomer is asked of
/// Kustomer ([`kustomer_user`]), so an agent cannot act as another agent's Kustomer user by
/// sending that user's id.
pub use adapter_core::agent_api::SignInRequest as SignIn;

const MAX_EMAIL_CHARS: usize = 254;

/// Longest sign-in waits for Kustomer to name the agent's user (the org's request budget is
/// shared with the CRM sync, so a busy minute can make it wait).
const KUSTOMER_USER_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// The agent's Kustomer user id, from Kustomer's API (`GET /v1/users?email=`, remembered by the
/// client). Sign-in is refused when Kustomer cannot say: the widget runs inside Kustomer, so
/// Kustomer is normally up and a retry soon works, while a session without its Kustomer user
/// would leave the status sync silently off for the agent's whole shift.
async fn kustomer_user(state: &AppState, email: &str) -> Result<String, Error> {
    let unavailable = |why: String| {
        tracing::warn!(agent = %email, error = %why, "cannot read the agent's Kustomer user at sign-in");
        Error::new(
            Code::KustomerUnavailable,
            "Kustomer cannot be reached to confirm your Kustomer user; try again in a moment.",
        )
    };
    match tokio::time::timeout(KUSTOMER_USER_WAIT, state.crm.kustomer().user_id(email)).await {
        Ok(Ok(Some(id))) => Ok(id),
        Ok(Ok(None)) => Err(Error::new(Code::UnknownKustomerUser, format!(
                "Kustomer has no user with the email {email} in the org this contact center is connected to; ask your administrator."
            ),
        )),
        Ok(Err(crate::kustomer::KustomerError::Store(why))) => {
            tracing::error!(agent = %email, error = %why, "store error at sign-in");
            Err(Error::new(
                Code::StoreUnavailable,
                "The gateway cannot reach its database; try again in a moment.",
            ))
        }
        Ok(Err(error)) => Err(unavailable(error.to_string())),
        Err(_) => Err(unavailable("no answer in time".into())),
    }
}

fn same_email(a: &str, b: &str) -> bool {
    a.trim().eq_ignore_ascii_case(b.trim())
}

/// Signs an agent in (`POST /api/v1/sessions`). The agent's email must be the Kustomer user's
/// (as the widget reports it), and Kustomer must know a user with it: that user is the
/// session's.
pub async fn sign_in(
    state: &AppState,
    request: SignIn,
    client: Option<std::net::IpAddr>,
) -> Result<Issued, Error> {
    if let Some(address) = client {
        state
            .throttles
            .sign_in_by_address
            .attempt(&address)
            .map_err(|wait| {
                tracing::warn!(%address, "sign-in attempts over the address's budget");
                Error::too_many_attempts(wait)
            })?;
    }
    let email = request.email.trim().to_lowercase();
    if email.is_empty() || email.len() > MAX_EMAIL_CHARS || !email.contains('@') {
        return Err(Error::new(
            Code::InvalidEmail,
            "Enter the email address you use for the contact center.",
        ));
    }
    if !same_email(&email, &request.kustomer_user.email) {
        return Err(Error::new(Code::EmailMismatch, format!(
                "You are signed in to Kustomer as {} but tried to sign in to the contact center as {email}. Use the same email address in both, so your status and calls follow you.",
                request.kustomer_user.email.trim()
            ),
        ));
    }
    let failures = &state.throttles.sign_in_failures_by_email;
    failures
        .check(&email)
        .await
        .map_err(crate::store::StoreError::from)?
        .map_err(Error::too_many_attempts)?;
    let verified = state
        .directory
        .verify(&email, request.password.as_deref())
        .await
        .map_err(|_| Error::too_many_attempts(crate::agents::HASHING_WAIT))?;
    if !verified {
        failures
            .failed(&email)
            .await
            .map_err(crate::store::StoreError::from)?;
        tracing::info!(agent = %email, "sign-in refused: wrong email or password");
        return Err(Error::new(Code::BadCredentials, "Wrong email or password."));
    }
    let Some(agent_id) = state.ccai.agent_id(&email).await? else {
        return Err(Error::new(
            Code::UnknownAgent,
            format!(
                "No contact-center agent has the email {email}; ask your administrator to add you."
            ),
        ));
    };
    let kustomer_user_id = kustomer_user(state, &email).await?;
    let issued = state
        .sessions
        .issue(&email, agent_id, &kustomer_user_id)
        .await?;
    crate::status::seed_status(state, agent_id).await;
    tracing::info!(agent = %email, agent_id, "agent signed in");
    Ok(issued)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_match_whatever_their_case_and_spacing() {
        assert!(same_email(" Ada@Example.com", "ada@example.com "));
        assert!(!same_email("ada@example.com", "ada@example.org"));
    }
}
