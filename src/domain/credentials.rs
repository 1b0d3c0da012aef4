//! API keys and webhook signing secrets: generated from the OS CSPRNG, keys stored only
//! as a SHA-256 digest. A key carries 256 bits of entropy, so a fast digest is enough:
//! there is nothing to brute-force, and lookups stay a single indexed equality.

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use rand::rngs::OsRng;
use rand::RngCore;
use sha2::{Digest, Sha256};

const KEY_PREFIX: &str = "cl_";

fn random_bytes() -> [u8; 32] {
    let mut bytes = [0u8; 32];
    OsRng.fill_bytes(&mut bytes);
    bytes
}

/// A newly generated API key. The plaintext is shown once, at creation.
pub struct NewApiKey {
    pub plaintext: String,
    pub hash: String,
}

impl NewApiKey {
    pub fn generate() -> Self {
        let plaintext = format!("{KEY_PREFIX}{}", URL_SAFE_NO_PAD.encode(random_bytes()));
        let hash = hash_api_key(&plaintext);
        Self { plaintext, hash }
    }
}

/// The digest under which a key is stored and looked up.
pub fn hash_api_key(plaintext: &str) -> String {
    digest(plaintext)
}

/// SHA-256 of a random secret (a key, a session id), as stored: hex.
pub fn digest(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// HMAC-SHA-256 of `text` under `key`, hex: the keyed hashes of erased values
/// (suppressions, released vendor ids), which cannot be matched without the key.
pub fn keyed_digest(key: &[u8], text: &str) -> String {
    use hmac::{Hmac, Mac};
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(text.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// 256 random bits, hex: the hub's own secrets.
pub fn generate_secret_hex() -> String {
    hex::encode(random_bytes())
}

/// A random token of 256 bits, base64url: console session ids and CSRF tokens.
pub fn random_token() -> String {
    URL_SAFE_NO_PAD.encode(random_bytes())
}

/// A Standard Webhooks signing secret: `whsec_` + base64 of 32 random bytes.
pub fn generate_webhook_secret() -> String {
    format!("whsec_{}", STANDARD.encode(random_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_random_and_hashed() {
        let a = NewApiKey::generate();
        let b = NewApiKey::generate();
        assert_ne!(a.plaintext, b.plaintext);
        assert!(a.plaintext.len() >= 43 + KEY_PREFIX.len());
        assert_eq!(a.hash, hash_api_key(&a.plaintext));
        assert_ne!(a.hash, a.plaintext);
    }

    #[test]
    fn webhook_secret_decodes_to_32_bytes() {
        let secret = generate_webhook_secret();
        let raw = STANDARD
            .decode(secret.strip_prefix("whsec_").unwrap())
            .unwrap();
        assert_eq!(raw.len(), 32);
    }
}
