//! Who may sign in: a directory of agents with argon2 password hashes (PHC strings), or, for the
//! demo only, development sign-in, where any email the CCAI tenant knows signs in without one.
//!
//! A password check costs tens of milliseconds of CPU by design, so it runs on the blocking
//! pool, a few at a time ([`AgentDirectory::verify`]), never on the async workers that answer
//! everyone else; and an unknown email is checked against a stand-in hash, so the time of the
//! answer does not tell who is in the directory.

use std::{collections::HashMap, path::Path, sync::Arc};

use argon2::{password_hash::PasswordHash, Argon2, PasswordVerifier};
use serde::Deserialize;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DirectoryError {
    #[error("cannot read the agents file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("the agents file {path} is not valid: {reason}")]
    Invalid { path: String, reason: String },
}

#[derive(Deserialize)]
struct Entry {
    email: String,
    /// An argon2 PHC string, e.g. `$argon2id$v=19$m=19456,t=2,p=1$...`.
    password_hash: String,
}

/// How agents prove who they are.
#[derive(Clone, Debug)]
pub enum AgentDirectory {
    /// Email and password, checked against argon2 hashes (emails compared case-insensitively).
    Passwords {
        hashes: HashMap<String, String>,
        /// A hash of nothing anyone knows, with the directory's own parameters: what an unknown
        /// email's password is checked against.
        stand_in: String,
        /// Turns to check a password: [`HASHING_AT_ONCE`] at a time.
        hashing: Arc<tokio::sync::Semaphore>,
    },
    /// No password: for the demo on the simulator only (on loopback, see
    /// [`crate::config::is_loopback`]).
    Development,
}

/// Password checks running at once (each holds a blocking thread and ~19 MiB for argon2's
/// memory); more wait their turn.
pub const HASHING_AT_ONCE: usize = 2;

/// The longest a sign-in waits for its turn to have its password checked.
pub const HASHING_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// The password check could not run in time (too many at once).
#[derive(Debug, thiserror::Error)]
#[error("too many sign-ins at once")]
pub struct Busy;

impl AgentDirectory {
    /// Reads a JSON array of `{"email", "password_hash"}`; every hash is checked to parse.
    pub fn from_file(path: &Path) -> Result<Self, DirectoryError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| DirectoryError::Read {
            path: shown.clone(),
            source,
        })?;
        Self::from_json(&text).map_err(|reason| DirectoryError::Invalid {
            path: shown,
            reason,
        })
    }

    pub fn from_json(text: &str) -> Result<Self, String> {
        let entries: Vec<Entry> = serde_json::from_str(text).map_err(|e| e.to_string())?;
        let mut agents = HashMap::new();
        let mut stand_in = None;
        for entry in entries {
            let parsed = PasswordHash::new(&entry.password_hash)
                .map_err(|e| format!("the password hash of {} does not parse: {e}", entry.email))?;
            if stand_in.is_none() {
                stand_in = Some(stand_in_like(&parsed)?);
            }
            let email = entry.email.trim().to_lowercase();
            if agents.insert(email.clone(), entry.password_hash).is_some() {
                return Err(format!("{email} is listed twice"));
            }
        }
        Ok(AgentDirectory::Passwords {
            hashes: agents,
            stand_in: stand_in.unwrap_or_default(),
            hashing: Arc::new(tokio::sync::Semaphore::new(HASHING_AT_ONCE)),
        })
    }

    /// Whether `email` is (still) in the directory. Development sign-in lets in any email.
    pub fn lists(&self, email: &str) -> bool {
        match self {
            AgentDirectory::Development => true,
            AgentDirectory::Passwords { hashes, .. } => {
                hashes.contains_key(&email.trim().to_lowercase())
            }
        }
    }

    /// Whether `password` signs `email` in, checked on the blocking pool, two at a time; an
    /// unknown email costs the same as a known one. Development sign-in needs no password.
    pub async fn verify(&self, email: &str, password: Option<&str>) -> Result<bool, Busy> {
        let AgentDirectory::Passwords {
            hashes,
            stand_in,
            hashing,
        } = self
        else {
            return Ok(true);
        };
        let Some(password) = password else {
            return Ok(false);
        };
        let (hash, known) = match hashes.get(&email.trim().to_lowercase()) {
            Some(hash) => (hash.clone(), true),
            None => (stand_in.clone(), false),
        };
        let password = password.to_owned();
        let _turn = tokio::time::timeout(HASHING_WAIT, hashing.acquire())
            .await
            .map_err(|_| Busy)?
            .map_err(|_| Busy)?;
        let matches = tokio::task::spawn_blocking(move || matches(&hash, &password))
            .await
            .map_err(|_| Busy)?;
        Ok(known && matches)
    }
}

/// Whether `password` is the one `hash` (a PHC string) was made from.
fn matches(hash: &str, password: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|hash| {
        Argon2::default()
            .verify_password(password.as_bytes(), &hash)
            .is_ok()
    })
}

/// A hash of a random password with `like`'s algorithm and parameters, so checking against it
/// takes as long as checking against a real entry.
fn stand_in_like(like: &PasswordHash<'_>) -> Result<String, String> {
    use argon2::{password_hash::SaltString, Algorithm, Params, PasswordHasher, Version};
    let algorithm = Algorithm::try_from(like.algorithm).unwrap_or_default();
    let version = like
        .version
        .and_then(|v| Version::try_from(v).ok())
        .unwrap_or_default();
    let params = Params::try_from(like).unwrap_or_default();
    let mut secret = [0u8; 32];
    getrandom::getrandom(&mut secret).map_err(|e| e.to_string())?;
    let salt = SaltString::encode_b64(&secret[..16]).map_err(|e| e.to_string())?;
    Argon2::new(algorithm, version, params)
        .hash_password(&secret[16..], &salt)
        .map(|hash| hash.to_string())
        .map_err(|e| format!("cannot make the stand-in hash: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use argon2::{password_hash::SaltString, PasswordHasher};

    fn hash(password: &str) -> String {
        let salt = SaltString::from_b64("c2FsdHNhbHRzYWx0").unwrap();
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .unwrap()
            .to_string()
    }

    #[tokio::test]
    async fn passwords_are_checked_against_their_hash() {
        let json = format!(
            r#"[{{"email": "Ada@Example.com", "password_hash": "{}"}}]"#,
            hash("correct horse")
        );
        let directory = AgentDirectory::from_json(&json).unwrap();
        let verify = |email, password| directory.verify(email, password);
        assert!(verify("ada@example.com", Some("correct horse"))
            .await
            .unwrap());
        assert!(!verify("ada@example.com", Some("wrong")).await.unwrap());
        assert!(!verify("ada@example.com", None).await.unwrap());
        assert!(!verify("grace@example.com", Some("correct horse"))
            .await
            .unwrap());
        assert!(directory.lists("ADA@example.com") && !directory.lists("grace@example.com"));
    }

    #[test]
    fn the_stand_in_hash_has_the_directory_s_parameters() {
        let json = format!(r#"[{{"email": "a@b", "password_hash": "{}"}}]"#, hash("x"));
        let AgentDirectory::Passwords {
            hashes, stand_in, ..
        } = AgentDirectory::from_json(&json).unwrap()
        else {
            panic!("a password directory");
        };
        let params = |h: &str| {
            let parsed = PasswordHash::new(h).unwrap();
            (parsed.algorithm.to_string(), parsed.params.to_string())
        };
        assert_eq!(params(&stand_in), params(&hashes["a@b"]));
        assert_ne!(stand_in, hashes["a@b"]);
    }

    #[test]
    fn bad_files_are_refused_with_the_reason() {
        assert!(AgentDirectory::from_json("{").is_err());
        let error = AgentDirectory::from_json(r#"[{"email": "a@b", "password_hash": "plain"}]"#)
            .unwrap_err();
        assert!(error.contains("does not parse"), "{error}");
        let h = hash("x");
        let twice = format!(
            r#"[{{"email": "a@b", "password_hash": "{h}"}}, {{"email": "A@B", "password_hash": "{h}"}}]"#
        );
        assert!(AgentDirectory::from_json(&twice)
            .unwrap_err()
            .contains("listed twice"));
    }

    #[tokio::test]
    async fn development_sign_in_needs_no_password() {
        assert!(AgentDirectory::Development
            .verify("anyone@example.com", None)
            .await
            .unwrap());
    }
}
