//! Prints the argon2 hash (a PHC string, with the gateway's parameters and a random salt) of
//! the password read from standard input, for an entry of the agents file (`--agents-file`):
//!
//! ```sh
//! printf '%s' 'the password' | cargo run --release -q -p adapter-gateway --example hash_password
//! ```

use std::io::Read;

use argon2::{password_hash::SaltString, Argon2, PasswordHasher};

fn main() -> std::process::ExitCode {
    let mut password = String::new();
    if let Err(error) = std::io::stdin().read_to_string(&mut password) {
        eprintln!("cannot read the password from standard input: {error}");
        return std::process::ExitCode::FAILURE;
    }
    let password = password.strip_suffix('\n').unwrap_or(&password);
    if password.is_empty() {
        eprintln!("the password is empty: write it to standard input");
        return std::process::ExitCode::FAILURE;
    }
    let mut salt = [0u8; 16];
    if let Err(error) = getrandom::getrandom(&mut salt) {
        eprintln!("no randomness for the salt: {error}");
        return std::process::ExitCode::FAILURE;
    }
    let hashed = SaltString::encode_b64(&salt)
        .map_err(|e| e.to_string())
        .and_then(|salt| {
            Argon2::default()
                .hash_password(password.as_bytes(), &salt)
                .map(|h| h.to_string())
                .map_err(|e| e.to_string())
        });
    match hashed {
        Ok(phc) => {
            println!("{phc}");
            std::process::ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("cannot hash the password: {error}");
            std::process::ExitCode::FAILURE
        }
    }
}
