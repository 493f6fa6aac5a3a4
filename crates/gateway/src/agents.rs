//! Who may sign in: a directory of agents with argon2 password hashes (PHC strings), or, for the
//! demo only, development sign-in, where any email the CCAI tenant knows signs in without one.

use std::{collections::HashMap, path::Path};

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
    Passwords(HashMap<String, String>),
    /// No password: for the demo on the simulator only.
    Development,
}

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
        for entry in entries {
            PasswordHash::new(&entry.password_hash)
                .map_err(|e| format!("the password hash of {} does not parse: {e}", entry.email))?;
            let email = entry.email.trim().to_lowercase();
            if agents.insert(email.clone(), entry.password_hash).is_some() {
                return Err(format!("{email} is listed twice"));
            }
        }
        Ok(AgentDirectory::Passwords(agents))
    }

    /// Whether `password` signs `email` in. Development sign-in needs none.
    pub fn verify(&self, email: &str, password: Option<&str>) -> bool {
        match self {
            AgentDirectory::Development => true,
            AgentDirectory::Passwords(agents) => {
                let (Some(hash), Some(password)) =
                    (agents.get(&email.trim().to_lowercase()), password)
                else {
                    return false;
                };
                PasswordHash::new(hash).is_ok_and(|hash| {
                    Argon2::default()
                        .verify_password(password.as_bytes(), &hash)
                        .is_ok()
                })
            }
        }
    }
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

    #[test]
    fn passwords_are_checked_against_their_hash() {
        let json = format!(
            r#"[{{"email": "Ada@Example.com", "password_hash": "{}"}}]"#,
            hash("correct horse")
        );
        let directory = AgentDirectory::from_json(&json).unwrap();
        assert!(directory.verify("ada@example.com", Some("correct horse")));
        assert!(!directory.verify("ada@example.com", Some("wrong")));
        assert!(!directory.verify("ada@example.com", None));
        assert!(!directory.verify("grace@example.com", Some("correct horse")));
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

    #[test]
    fn development_sign_in_needs_no_password() {
        assert!(AgentDirectory::Development.verify("anyone@example.com", None));
    }
}
