//! DKIM signing (RFC 6376), one key per sender domain: a message is signed with the key of its
//! From domain, so `d=` is always that domain and DMARC aligns for every firm; a From domain
//! without a key goes out unsigned rather than with a `d=` that does not align.
//!
//! The signature is lettre's, with `c=relaxed/relaxed`: lettre folds the `DKIM-Signature`
//! header after computing `b=`, which `simple` header canonicalization (its default) does not
//! survive; relaxed unfolds before hashing, so the folding no longer matters. Checked against an
//! independent verifier (dkimpy) in `tests/dkim.rs` and `tests/email.rs`.
use crate::config::{DkimAlgorithm, DkimSettings};
use base64::Engine;
use lettre::Message;
use lettre::message::dkim::{
    DkimCanonicalization, DkimCanonicalizationType, DkimConfig, DkimSigningAlgorithm, DkimSigningKey,
};
use lettre::message::header::HeaderName;
use rsa::RsaPrivateKey;
use rsa::pkcs1::{DecodeRsaPrivateKey, EncodeRsaPrivateKey, LineEnding};
// One trait (the `pkcs8` crate's) for both RSA and Ed25519 keys.
use rsa::pkcs8::DecodePrivateKey;
use rsa::traits::PublicKeyParts;
use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

/// The headers every signature covers (`h=`), all present in every message `mail::Mailer`
/// builds. RFC 8058 wants both List-Unsubscribe headers under a valid signature.
pub const SIGNED_HEADERS: [&str; 8] =
    ["From", "To", "Subject", "Date", "Message-ID", "Reply-To", "List-Unsubscribe", "List-Unsubscribe-Post"];

/// RFC 8301: verifiers ignore RSA signatures made with smaller keys.
const MIN_RSA_BITS: usize = 1024;

/// The most header bytes a message to be signed may have. lettre's relaxed header
/// canonicalization recurses once per character of the signed headers, and a 2 MiB stack
/// overflows (aborting the process) somewhere past 20 KiB in a debug build. A real reminder's
/// headers are 1 to 2 KiB; longer ones (a pasted essay as a contact name) fail the email instead.
pub const MAX_HEADER_BYTES: usize = 8 * 1024;

/// The message cannot be signed: permanent, the same input fails every time.
#[derive(Debug, thiserror::Error)]
#[error("the message headers are {bytes} bytes, more than the {MAX_HEADER_BYTES} that DKIM signing takes")]
pub struct HeadersTooLong {
    pub bytes: usize,
}

/// A key that cannot be used; the message names the configuration entry.
#[derive(Debug, thiserror::Error)]
pub enum DkimKeyError {
    #[error("email.dkim[{index}].private_key_path {path} cannot be read: {reason}")]
    Unreadable { index: usize, path: String, reason: String },
    #[error("email.dkim[{index}].private_key_path {path} is not a usable key: {reason}")]
    Invalid { index: usize, path: String, reason: String },
    #[error(
        "email.dkim[{index}].algorithm is {configured}, but {path} holds an {found} key \
         (set algorithm = \"{found}\" or point private_key_path at the {configured} key)"
    )]
    WrongAlgorithm { index: usize, path: String, configured: DkimAlgorithm, found: DkimAlgorithm },
}

/// The signing keys by sender domain (lower case).
pub struct DkimSigner {
    keys: HashMap<String, DkimConfig>,
    /// From domains already logged as going out unsigned (logged once each).
    unsigned: Mutex<HashSet<String>>,
}

impl std::fmt::Debug for DkimSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut domains: Vec<&String> = self.keys.keys().collect();
        domains.sort();
        f.debug_struct("DkimSigner").field("domains", &domains).finish_non_exhaustive()
    }
}

impl DkimSigner {
    /// Reads and checks every key (start-up: a bad key stops the service).
    pub fn load(settings: &[DkimSettings]) -> Result<Self, DkimKeyError> {
        let mut keys = HashMap::new();
        for (index, s) in settings.iter().enumerate() {
            let key = load_key(index, s)?;
            let headers = SIGNED_HEADERS.iter().map(|h| HeaderName::new_from_ascii_str(h)).collect();
            let canonicalization = DkimCanonicalization {
                header: DkimCanonicalizationType::Relaxed,
                body: DkimCanonicalizationType::Relaxed,
            };
            let domain = s.domain.to_ascii_lowercase();
            let config = DkimConfig::new(s.selector.clone(), domain.clone(), key, headers, canonicalization);
            keys.insert(domain, config);
        }
        Ok(DkimSigner { keys, unsigned: Mutex::new(HashSet::new()) })
    }

    /// Signs `message` with the key of `from_domain` (`d=` is that domain); true when signed.
    /// Without a key for it the message stays unsigned, logged once per domain.
    pub fn sign(&self, message: &mut Message, from_domain: &str) -> Result<bool, HeadersTooLong> {
        let domain = from_domain.to_ascii_lowercase();
        if let Some(config) = self.keys.get(&domain) {
            let bytes = message.headers().to_string().len();
            if bytes > MAX_HEADER_BYTES {
                return Err(HeadersTooLong { bytes });
            }
            message.sign(config);
            return Ok(true);
        }
        if !self.keys.is_empty() {
            let mut seen = self.unsigned.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            if seen.insert(domain) {
                tracing::debug!(from_domain, "no DKIM key for this From domain: its mail goes out unsigned");
            }
        }
        Ok(false)
    }
}

enum Parsed {
    Rsa(RsaPrivateKey),
    Ed25519(ed25519_dalek::SigningKey),
}

fn load_key(index: usize, s: &DkimSettings) -> Result<DkimSigningKey, DkimKeyError> {
    let path = s.private_key_path.clone();
    let text = std::fs::read_to_string(&s.private_key_path).map_err(|e| DkimKeyError::Unreadable {
        index,
        path: path.clone(),
        reason: e.to_string(),
    })?;
    let invalid = |reason: String| DkimKeyError::Invalid { index, path: path.clone(), reason };
    let parsed = parse_key(text.trim()).map_err(invalid)?;
    let found = match parsed {
        Parsed::Rsa(_) => DkimAlgorithm::Rsa,
        Parsed::Ed25519(_) => DkimAlgorithm::Ed25519,
    };
    if found != s.algorithm {
        return Err(DkimKeyError::WrongAlgorithm { index, path, configured: s.algorithm, found });
    }
    let key = match parsed {
        Parsed::Rsa(key) => {
            let bits = key.size() * 8;
            if bits < MIN_RSA_BITS {
                return Err(invalid(format!(
                    "an RSA key of {bits} bits; verifiers ignore keys under {MIN_RSA_BITS} bits (use 2048)"
                )));
            }
            // lettre reads PKCS#1 PEM only.
            let pem = key.to_pkcs1_pem(LineEnding::LF).map_err(|e| invalid(e.to_string()))?;
            DkimSigningKey::new(&pem, DkimSigningAlgorithm::Rsa)
        }
        // lettre reads the base64 32-byte secret key only.
        Parsed::Ed25519(key) => DkimSigningKey::new(
            &base64::engine::general_purpose::STANDARD.encode(key.to_bytes()),
            DkimSigningAlgorithm::Ed25519,
        ),
    };
    key.map_err(|e| invalid(e.to_string()))
}

/// PKCS#1 or PKCS#8 PEM (RSA or Ed25519), or a base64 32-byte Ed25519 secret key.
fn parse_key(text: &str) -> Result<Parsed, String> {
    if text.contains("-----BEGIN RSA PRIVATE KEY-----") {
        return RsaPrivateKey::from_pkcs1_pem(text)
            .map(Parsed::Rsa)
            .map_err(|e| format!("a PKCS#1 RSA PEM that cannot be read: {e}"));
    }
    if text.contains("-----BEGIN PRIVATE KEY-----") {
        if let Ok(key) = RsaPrivateKey::from_pkcs8_pem(text) {
            return Ok(Parsed::Rsa(key));
        }
        return ed25519_dalek::SigningKey::from_pkcs8_pem(text)
            .map(Parsed::Ed25519)
            .map_err(|e| format!("a PKCS#8 PEM that is neither an RSA nor an Ed25519 key: {e}"));
    }
    if text.contains("-----BEGIN ENCRYPTED PRIVATE KEY-----") {
        return Err("an encrypted PKCS#8 key; store it unencrypted (the file itself is the secret)".into());
    }
    if text.contains("-----BEGIN") {
        return Err("a PEM that is not a private key (expected BEGIN RSA PRIVATE KEY or BEGIN PRIVATE KEY)".into());
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text)
        .map_err(|_| "neither a PEM private key nor a base64 Ed25519 secret key".to_string())?;
    let seed: [u8; 32] = bytes
        .try_into()
        .map_err(|b: Vec<u8>| format!("base64 of {} bytes; an Ed25519 secret key is 32 bytes", b.len()))?;
    Ok(Parsed::Ed25519(ed25519_dalek::SigningKey::from_bytes(&seed)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rsa::pkcs8::EncodePrivateKey;

    struct Dir(std::path::PathBuf);
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn dir() -> Dir {
        let d = std::env::temp_dir().join(format!("arflow-dkim-{}", uuid::Uuid::now_v7()));
        std::fs::create_dir_all(&d).unwrap();
        Dir(d)
    }

    fn settings(dir: &Dir, name: &str, contents: &str, algorithm: DkimAlgorithm) -> DkimSettings {
        let path = dir.0.join(name);
        std::fs::write(&path, contents).unwrap();
        DkimSettings {
            domain: format!("{name}.example"),
            selector: "arflow".into(),
            private_key_path: path.to_string_lossy().into_owned(),
            algorithm,
        }
    }

    fn rsa_key(bits: usize) -> RsaPrivateKey {
        RsaPrivateKey::new(&mut rsa::rand_core::OsRng, bits).unwrap()
    }

    #[test]
    fn reads_pkcs1_pkcs8_and_base64_keys() {
        let d = dir();
        let rsa = rsa_key(1024);
        let ed = ed25519_dalek::SigningKey::from_bytes(&[42; 32]);
        let keys = [
            settings(&d, "pkcs1", &rsa.to_pkcs1_pem(LineEnding::LF).unwrap(), DkimAlgorithm::Rsa),
            settings(&d, "pkcs8-rsa", &rsa.to_pkcs8_pem(LineEnding::CRLF).unwrap(), DkimAlgorithm::Rsa),
            settings(&d, "pkcs8-ed", &ed.to_pkcs8_pem(LineEnding::LF).unwrap(), DkimAlgorithm::Ed25519),
            settings(
                &d,
                "base64-ed",
                &format!("{}\n", base64::engine::general_purpose::STANDARD.encode([42u8; 32])),
                DkimAlgorithm::Ed25519,
            ),
        ];
        let signer = DkimSigner::load(&keys).unwrap();
        assert_eq!(signer.keys.len(), 4);
        assert!(format!("{signer:?}").contains("pkcs8-ed.example"));
    }

    #[test]
    fn a_key_of_the_other_algorithm_is_a_clear_error() {
        let d = dir();
        let ed = ed25519_dalek::SigningKey::from_bytes(&[1; 32]).to_pkcs8_pem(LineEnding::LF).unwrap();
        let err = DkimSigner::load(&[settings(&d, "ed", &ed, DkimAlgorithm::Rsa)]).unwrap_err().to_string();
        assert!(err.contains("email.dkim[0].algorithm is rsa, but") && err.contains("holds an ed25519 key"), "{err}");
        let rsa = rsa_key(1024).to_pkcs1_pem(LineEnding::LF).unwrap();
        let ok = settings(&d, "ok", &ed, DkimAlgorithm::Ed25519);
        let err = DkimSigner::load(&[ok, settings(&d, "rsa", &rsa, DkimAlgorithm::Ed25519)]).unwrap_err();
        assert!(err.to_string().contains("email.dkim[1].algorithm is ed25519, but"), "{err}");
        assert!(err.to_string().contains("holds an rsa key"), "{err}");
    }

    #[test]
    fn unreadable_short_and_unknown_keys_are_clear_errors() {
        let d = dir();
        let mut missing = settings(&d, "x", "", DkimAlgorithm::Rsa);
        missing.private_key_path = d.0.join("missing.pem").to_string_lossy().into_owned();
        let err = DkimSigner::load(&[missing]).unwrap_err().to_string();
        assert!(err.contains("email.dkim[0].private_key_path") && err.contains("cannot be read"), "{err}");

        let short = rsa_key(512).to_pkcs1_pem(LineEnding::LF).unwrap();
        let err = DkimSigner::load(&[settings(&d, "short", &short, DkimAlgorithm::Rsa)]).unwrap_err().to_string();
        assert!(err.contains("an RSA key of 512 bits"), "{err}");

        for (contents, want) in [
            ("-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA\n-----END PUBLIC KEY-----\n", "not a private key"),
            ("-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n", "encrypted"),
            ("-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----\n", "PKCS#1"),
            ("not a key at all", "neither a PEM private key nor a base64"),
            ("AAAA", "base64 of 3 bytes"),
        ] {
            let err = DkimSigner::load(&[settings(&d, "bad", contents, DkimAlgorithm::Ed25519)]).unwrap_err();
            let err = err.to_string();
            assert!(err.contains("email.dkim[0].private_key_path") && err.contains(want), "{want}: {err}");
        }
    }
}
