//! Credentials: SCRAM-SHA-256 against PostgreSQL-format verifiers, and argon2id for cleartext
//! passwords. No wire types: `server` drives these state machines with message payloads.
//!
//! The YAML holds only verifiers (`StoredKey`/`ServerKey`, or an argon2id hash), so a leaked
//! `grants/` directory is not a leaked login. Unknown users go through the same SCRAM exchange
//! against a fake verifier derived from a per-process secret, so that neither the messages nor
//! the timing tell an attacker which user names exist.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

type HmacSha256 = Hmac<Sha256>;

/// Iterations PostgreSQL uses by default (`scram_iterations`).
pub const DEFAULT_ITERATIONS: u32 = 4096;

/// Authentication errors. Every variant is reported to the client as the same 28P01 message.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Error {
    /// The stored verifier is malformed.
    #[error("invalid SCRAM verifier")]
    InvalidVerifier,
    /// The client sent something that is not SCRAM-SHA-256 as we speak it.
    #[error("malformed SCRAM message: {0}")]
    Protocol(&'static str),
    /// The proof did not match.
    #[error("password authentication failed")]
    WrongPassword,
}

/// A SCRAM-SHA-256 verifier: `SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>`.
#[derive(Clone, PartialEq, Eq)]
pub struct ScramVerifier {
    iterations: u32,
    salt: Vec<u8>,
    stored_key: [u8; 32],
    server_key: [u8; 32],
}

impl std::fmt::Debug for ScramVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ScramVerifier(iterations={})", self.iterations)
    }
}

impl ScramVerifier {
    /// Parses PostgreSQL's verifier format.
    pub fn parse(text: &str) -> Result<ScramVerifier, Error> {
        let rest = text
            .strip_prefix("SCRAM-SHA-256$")
            .ok_or(Error::InvalidVerifier)?;
        let (params, keys) = rest.split_once('$').ok_or(Error::InvalidVerifier)?;
        let (iterations, salt) = params.split_once(':').ok_or(Error::InvalidVerifier)?;
        let (stored, server) = keys.split_once(':').ok_or(Error::InvalidVerifier)?;
        let decode32 = |s: &str| -> Result<[u8; 32], Error> {
            B64.decode(s)
                .ok()
                .and_then(|v| <[u8; 32]>::try_from(v.as_slice()).ok())
                .ok_or(Error::InvalidVerifier)
        };
        Ok(ScramVerifier {
            iterations: iterations.parse().map_err(|_| Error::InvalidVerifier)?,
            salt: B64.decode(salt).map_err(|_| Error::InvalidVerifier)?,
            stored_key: decode32(stored)?,
            server_key: decode32(server)?,
        })
    }

    /// Makes a verifier for `password` with a random salt.
    pub fn generate(password: &str, iterations: u32) -> ScramVerifier {
        let mut salt = vec![0u8; 16];
        rand::rng().fill_bytes(&mut salt);
        Self::from_password(password, &salt, iterations)
    }

    fn from_password(password: &str, salt: &[u8], iterations: u32) -> ScramVerifier {
        // PostgreSQL applies SASLprep when it can and falls back to the raw bytes otherwise.
        let prepared = stringprep::saslprep(password)
            .map(|p| p.into_owned())
            .unwrap_or_else(|_| password.to_string());
        let mut salted = [0u8; 32];
        pbkdf2::pbkdf2_hmac::<Sha256>(prepared.as_bytes(), salt, iterations, &mut salted);
        let client_key = hmac(&salted, b"Client Key");
        let stored_key: [u8; 32] = Sha256::digest(client_key).into();
        let server_key = hmac(&salted, b"Server Key");
        ScramVerifier {
            iterations,
            salt: salt.to_vec(),
            stored_key,
            server_key,
        }
    }

    /// A verifier for a user that does not exist: stable per user name for the life of the
    /// process, never matching any password.
    pub fn mock(user: &str, process_secret: &[u8; 32]) -> ScramVerifier {
        let mut mac = HmacSha256::new_from_slice(process_secret).unwrap_or_else(|_| {
            // HMAC accepts keys of any length; this branch cannot run.
            HmacSha256::new_from_slice(b"lakehouse").unwrap_or_else(|_| unreachable_mac())
        });
        mac.update(user.to_lowercase().as_bytes());
        let digest = mac.finalize().into_bytes();
        let mut stored_key = [0u8; 32];
        rand::rng().fill_bytes(&mut stored_key);
        ScramVerifier {
            iterations: DEFAULT_ITERATIONS,
            salt: digest[..16].to_vec(),
            stored_key,
            server_key: [0u8; 32],
        }
    }
}

#[cold]
fn unreachable_mac() -> HmacSha256 {
    // Only reachable if HMAC-SHA256 rejected a key, which it never does.
    std::process::abort()
}

impl std::fmt::Display for ScramVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "SCRAM-SHA-256${}:{}${}:{}",
            self.iterations,
            B64.encode(&self.salt),
            B64.encode(self.stored_key),
            B64.encode(self.server_key)
        )
    }
}

fn hmac(key: &[u8], data: &[u8]) -> [u8; 32] {
    let mut mac = match HmacSha256::new_from_slice(key) {
        Ok(mac) => mac,
        Err(_) => unreachable_mac(),
    };
    mac.update(data);
    mac.finalize().into_bytes().into()
}

/// Server side of one SCRAM-SHA-256 exchange (RFC 5802/7677, no channel binding).
#[derive(Debug)]
pub struct ScramExchange {
    verifier: ScramVerifier,
    state: ScramState,
}

#[derive(Debug)]
enum ScramState {
    Initial,
    SentServerFirst {
        client_first_bare: String,
        server_first: String,
        nonce: String,
        gs2_header: String,
    },
    Done,
}

impl ScramExchange {
    /// Starts an exchange against `verifier`.
    pub fn new(verifier: ScramVerifier) -> ScramExchange {
        ScramExchange {
            verifier,
            state: ScramState::Initial,
        }
    }

    /// Handles the client-first message; returns the server-first message.
    pub fn client_first(&mut self, message: &[u8]) -> Result<Vec<u8>, Error> {
        let message = std::str::from_utf8(message).map_err(|_| Error::Protocol("not UTF-8"))?;
        // gs2-header: "n,," (no channel binding) or "y,," (client could, thinks we cannot).
        // "p=..." asks for channel binding, which we do not advertise.
        let (cbind_flag, rest) = message
            .split_once(',')
            .ok_or(Error::Protocol("missing gs2 header"))?;
        if !matches!(cbind_flag, "n" | "y") {
            return Err(Error::Protocol("channel binding is not supported"));
        }
        let (authzid, client_first_bare) = rest
            .split_once(',')
            .ok_or(Error::Protocol("missing gs2 header"))?;
        if !authzid.is_empty() {
            return Err(Error::Protocol("authorization identity is not supported"));
        }
        // Attributes: n=<user>,r=<nonce>[,extensions]. PostgreSQL ignores the user here; the
        // startup message names the user.
        let mut client_nonce = None;
        for attr in client_first_bare.split(',') {
            if let Some(nonce) = attr.strip_prefix("r=") {
                client_nonce = Some(nonce);
            } else if attr.starts_with("m=") {
                return Err(Error::Protocol("mandatory extensions are not supported"));
            }
        }
        let client_nonce = client_nonce
            .filter(|n| !n.is_empty() && n.bytes().all(|b| (0x21..=0x7e).contains(&b) && b != b','))
            .ok_or(Error::Protocol("missing client nonce"))?;
        let mut server_nonce = [0u8; 18];
        rand::rng().fill_bytes(&mut server_nonce);
        let nonce = format!("{client_nonce}{}", B64.encode(server_nonce));
        let server_first = format!(
            "r={nonce},s={},i={}",
            B64.encode(&self.verifier.salt),
            self.verifier.iterations
        );
        self.state = ScramState::SentServerFirst {
            client_first_bare: client_first_bare.to_string(),
            server_first: server_first.clone(),
            nonce,
            gs2_header: format!("{cbind_flag},{authzid},"),
        };
        Ok(server_first.into_bytes())
    }

    /// Handles the client-final message; returns the server-final message when the proof is
    /// right.
    pub fn client_final(&mut self, message: &[u8]) -> Result<Vec<u8>, Error> {
        let ScramState::SentServerFirst {
            client_first_bare,
            server_first,
            nonce,
            gs2_header,
        } = std::mem::replace(&mut self.state, ScramState::Done)
        else {
            return Err(Error::Protocol("unexpected message"));
        };
        let message = std::str::from_utf8(message).map_err(|_| Error::Protocol("not UTF-8"))?;
        let proof_pos = message
            .rfind(",p=")
            .ok_or(Error::Protocol("missing proof"))?;
        let without_proof = &message[..proof_pos];
        let proof = B64
            .decode(&message[proof_pos + 3..])
            .map_err(|_| Error::Protocol("proof is not base64"))?;
        let mut channel_binding = None;
        let mut final_nonce = None;
        for attr in without_proof.split(',') {
            if let Some(c) = attr.strip_prefix("c=") {
                channel_binding = Some(c);
            } else if let Some(r) = attr.strip_prefix("r=") {
                final_nonce = Some(r);
            }
        }
        let expected_binding = B64.encode(gs2_header.as_bytes());
        if channel_binding != Some(expected_binding.as_str()) {
            return Err(Error::Protocol("channel binding data mismatch"));
        }
        if final_nonce != Some(nonce.as_str()) {
            return Err(Error::Protocol("nonce mismatch"));
        }
        if proof.len() != 32 {
            return Err(Error::WrongPassword);
        }
        let auth_message = format!("{client_first_bare},{server_first},{without_proof}");
        let client_signature = hmac(&self.verifier.stored_key, auth_message.as_bytes());
        let mut client_key = [0u8; 32];
        for (idx, byte) in client_key.iter_mut().enumerate() {
            *byte = proof[idx] ^ client_signature[idx];
        }
        let computed_stored: [u8; 32] = Sha256::digest(client_key).into();
        if !bool::from(computed_stored.ct_eq(&self.verifier.stored_key)) {
            return Err(Error::WrongPassword);
        }
        let server_signature = hmac(&self.verifier.server_key, auth_message.as_bytes());
        Ok(format!("v={}", B64.encode(server_signature)).into_bytes())
    }
}

/// Hashes a password with argon2id (default parameters: 19 MiB, 2 passes).
pub fn hash_password(password: &str) -> String {
    use argon2::password_hash::{PasswordHasher, SaltString};
    let mut salt = [0u8; 16];
    rand::rng().fill_bytes(&mut salt);
    let result = SaltString::encode_b64(&salt)
        .map_err(|err| err.to_string())
        .and_then(|salt| {
            argon2::Argon2::default()
                .hash_password(password.as_bytes(), &salt)
                .map(|h| h.to_string())
                .map_err(|err| err.to_string())
        });
    match result {
        Ok(hash) => hash,
        // Hashing only fails on parameters we do not set; fail loudly rather than store nothing.
        Err(err) => format!("$argon2id$invalid:{err}"),
    }
}

/// Checks a cleartext password against an argon2id hash. CPU-heavy: call from a blocking task.
pub fn verify_password(password: &str, hash: &str) -> bool {
    use argon2::password_hash::{PasswordHash, PasswordVerifier};
    match PasswordHash::new(hash) {
        Ok(parsed) => argon2::Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

/// A random secret for mock verifiers and cancel keys.
pub fn random_secret() -> [u8; 32] {
    let mut secret = [0u8; 32];
    rand::rng().fill_bytes(&mut secret);
    secret
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A client side of SCRAM, enough to test the server.
    fn client_final(password: &str, server_first: &str, client_first_bare: &str) -> String {
        let mut nonce = "";
        let mut salt = Vec::new();
        let mut iterations = 0;
        for attr in server_first.split(',') {
            if let Some(v) = attr.strip_prefix("r=") {
                nonce = v;
            } else if let Some(v) = attr.strip_prefix("s=") {
                salt = B64.decode(v).unwrap();
            } else if let Some(v) = attr.strip_prefix("i=") {
                iterations = v.parse().unwrap();
            }
        }
        let verifier = ScramVerifier::from_password(password, &salt, iterations);
        let mut salted = [0u8; 32];
        pbkdf2::pbkdf2_hmac::<Sha256>(password.as_bytes(), &salt, iterations, &mut salted);
        let client_key = hmac(&salted, b"Client Key");
        let without_proof = format!("c={},r={nonce}", B64.encode("n,,"));
        let auth_message = format!("{client_first_bare},{server_first},{without_proof}");
        let signature = hmac(&verifier.stored_key, auth_message.as_bytes());
        let proof: Vec<u8> = client_key
            .iter()
            .zip(signature)
            .map(|(a, b)| a ^ b)
            .collect();
        format!("{without_proof},p={}", B64.encode(proof))
    }

    /// A whole SCRAM exchange against `verifier` with `password` and the client nonce `nonce`.
    fn scram_login(
        verifier: &ScramVerifier,
        password: &str,
        nonce: &str,
    ) -> Result<Vec<u8>, Error> {
        let mut exchange = ScramExchange::new(verifier.clone());
        let bare = format!("n=*,r={nonce}");
        let first = exchange.client_first(format!("n,,{bare}").as_bytes());
        let server_first = String::from_utf8(first.unwrap()).unwrap();
        exchange.client_final(client_final(password, &server_first, &bare).as_bytes())
    }

    #[test]
    fn round_trip_and_wrong_password() {
        let verifier = ScramVerifier::generate("pbi-reader-demo", 4096);
        let text = verifier.to_string();
        assert_eq!(ScramVerifier::parse(&text).unwrap(), verifier);

        for (password, ok) in [("pbi-reader-demo", true), ("wrong", false)] {
            let result = scram_login(&verifier, password, "abcdefghijkl");
            assert_eq!(result.is_ok(), ok, "{password}");
            if !ok {
                assert_eq!(result.unwrap_err(), Error::WrongPassword);
            }
        }
    }

    #[test]
    fn postgres_made_verifier_is_accepted() {
        // Made by PostgreSQL 15.20: SET password_encryption = 'scram-sha-256';
        // CREATE ROLE probe PASSWORD 'secret'; SELECT rolpassword FROM pg_authid.
        let text = "SCRAM-SHA-256$4096:J+o6UsA+/Dcx0xP+TwzlRQ==$xJ28C6Jz0nMgnZj06ofNb7McFVMbcN+C4OnLWI4dGXo=:/ltCfc254Yg1n2ZxjWnH3RzBewYwihU1W7xHYoiqlH0=";
        let verifier = ScramVerifier::parse(text).unwrap();
        assert_eq!(verifier.to_string(), text);
        let salt = verifier.salt.clone();
        assert_eq!(
            ScramVerifier::from_password("secret", &salt, 4096),
            verifier
        );
        assert!(scram_login(&verifier, "secret", "0123456789").is_ok());
        assert!(ScramVerifier::parse("md5abc").is_err());
    }

    #[test]
    fn channel_binding_requests_are_refused() {
        let mut exchange = ScramExchange::new(ScramVerifier::generate("x", 4096));
        assert!(
            exchange
                .client_first(b"p=tls-server-end-point,,n=*,r=abc")
                .is_err()
        );
    }

    #[test]
    fn mock_verifier_is_stable_per_user() {
        let secret = random_secret();
        let a = ScramVerifier::mock("ghost", &secret);
        let b = ScramVerifier::mock("GHOST", &secret);
        assert_eq!(a.salt, b.salt);
    }

    #[test]
    fn argon2_round_trip() {
        let hash = hash_password("admin-demo");
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_password("admin-demo", &hash));
        assert!(!verify_password("nope", &hash));
        assert!(!verify_password("admin-demo", "garbage"));
    }
}
