//! Password hashing with argon2id (RFC 9106), stored as PHC strings.
//!
//! Hashing and verifying take tens of milliseconds of CPU by design; async callers run them on a
//! blocking thread.

use argon2::Argon2;
use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};

/// Longest password accepted, in octets; longer input is refused before any hashing work.
pub const PASSWORD_BYTES_MAX: usize = 1024;

/// Hashes `password` with argon2id and a fresh random salt (the crate's RFC 9106 defaults:
/// 19 MiB, 2 passes, 1 lane). Returns the PHC string (`$argon2id$v=19$m=…`).
///
/// # Errors
/// When the password is longer than [`PASSWORD_BYTES_MAX`] or empty.
pub fn hash(password: &str) -> Result<String, PasswordError> {
    if password.is_empty() {
        return Err(PasswordError::Empty);
    }
    if password.len() > PASSWORD_BYTES_MAX {
        return Err(PasswordError::TooLong);
    }
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|_| PasswordError::Hashing)
}

/// Whether `password` matches the PHC string `phc`. A malformed stored hash never matches.
pub fn verify(password: &str, phc: &str) -> bool {
    if password.len() > PASSWORD_BYTES_MAX {
        return false;
    }
    match PasswordHash::new(phc) {
        Ok(parsed) => Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok(),
        Err(_) => false,
    }
}

/// Why a password could not be hashed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasswordError {
    /// The password is empty.
    #[error("the password is empty")]
    Empty,
    /// The password is longer than [`PASSWORD_BYTES_MAX`].
    #[error("the password is longer than {PASSWORD_BYTES_MAX} bytes")]
    TooLong,
    /// The hasher failed (it does not for valid input).
    #[error("password hashing failed")]
    Hashing,
}

#[cfg(test)]
mod tests {
    #[test]
    fn hash_then_verify() {
        let phc = super::hash("CIS505").unwrap();
        assert!(phc.starts_with("$argon2id$"));
        assert!(super::verify("CIS505", &phc));
        assert!(!super::verify("cis505", &phc));
        assert!(!super::verify("CIS505", "not a hash"));
    }
}
