//! DKIM test keys, made in the test, and the independent verifier: dkimpy
//! (`tests/dkim_verify.py`, run with the project venv's python; `just setup` installs it).
use arflow_email::config::{DkimAlgorithm, DkimSettings};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::pkcs8::EncodePrivateKey;
use rsa::pkcs1::{EncodeRsaPrivateKey, LineEnding};
use rsa::pkcs8::EncodePublicKey;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The headers every signature must cover (RFC 8058 for the List-Unsubscribe pair).
pub const REQUIRED: [&str; 8] =
    ["from", "to", "subject", "date", "message-id", "reply-to", "list-unsubscribe", "list-unsubscribe-post"];

/// A directory removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new() -> Self {
        let dir = std::env::temp_dir().join(format!("arflow-dkim-{}", uuid::Uuid::now_v7()));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A private key written where the service reads it, and its public DNS record.
pub struct TestKey {
    pub settings: DkimSettings,
    /// `v=DKIM1; k=...; p=...`, as published at `<selector>._domainkey.<domain>`.
    pub txt: String,
}

impl TestKey {
    /// RSA 2048, PKCS#1 PEM (`BEGIN RSA PRIVATE KEY`), p= the SubjectPublicKeyInfo.
    pub fn rsa(dir: &Path, domain: &str, selector: &str) -> Self {
        let key = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).unwrap();
        let public = rsa::RsaPublicKey::from(&key).to_public_key_der().unwrap();
        let pem = key.to_pkcs1_pem(LineEnding::LF).unwrap();
        let txt = format!("v=DKIM1; k=rsa; p={}", STANDARD.encode(public.as_bytes()));
        Self::write(dir, domain, selector, DkimAlgorithm::Rsa, pem.as_bytes(), txt)
    }

    /// Ed25519, PKCS#8 PEM (`BEGIN PRIVATE KEY`, as `openssl genpkey -algorithm ed25519`
    /// writes it), p= the raw 32-byte public key (RFC 8463).
    pub fn ed25519(dir: &Path, domain: &str, selector: &str) -> Self {
        let key = ed25519_dalek::SigningKey::from_bytes(&rand::random::<[u8; 32]>());
        let pem = key.to_pkcs8_pem(LineEnding::LF).unwrap();
        let txt = format!("v=DKIM1; k=ed25519; p={}", STANDARD.encode(key.verifying_key().to_bytes()));
        Self::write(dir, domain, selector, DkimAlgorithm::Ed25519, pem.as_bytes(), txt)
    }

    fn write(dir: &Path, domain: &str, selector: &str, algorithm: DkimAlgorithm, pem: &[u8], txt: String) -> Self {
        let path = dir.join(format!("{domain}.{selector}.pem"));
        std::fs::write(&path, pem).unwrap();
        let settings = DkimSettings {
            domain: domain.into(),
            selector: selector.into(),
            private_key_path: path.to_string_lossy().into_owned(),
            algorithm,
        };
        TestKey { settings, txt }
    }

    /// The `--dns NAME=TXT` answer the verifier gets.
    fn dns(&self) -> String {
        format!("{}._domainkey.{}={}", self.settings.selector, self.settings.domain, self.txt)
    }
}

/// The project venv's python, where `deploy/local/setup.sh` installs dkimpy.
pub fn python() -> PathBuf {
    let python = arflow_testkit::repo_root().join(".tools/venv/bin/python");
    assert!(python.exists(), "{} not found: run `just setup` (deploy/local/setup.sh)", python.display());
    python
}

/// One line per message from dkimpy: `PASS <name> d=.. s=.. a=.. c=.. h=..` or `FAIL <name> <why>`,
/// in the order given. Only the keys given are in its DNS.
pub fn dkimpy(keys: &[&TestKey], messages: &[(&str, &[u8])]) -> Vec<String> {
    let dir = TempDir::new();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/dkim_verify.py");
    let mut cmd = Command::new(python());
    cmd.arg(script);
    for key in keys {
        cmd.arg("--dns").arg(key.dns());
    }
    for (name, bytes) in messages {
        let path = dir.0.join(format!("{name}.eml"));
        std::fs::write(&path, bytes).unwrap();
        cmd.arg(path);
    }
    let out = cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains("ModuleNotFoundError"),
        "dkimpy is missing from the venv: run `just setup` (deploy/local/requirements.txt)\n{stderr}"
    );
    let lines: Vec<String> = stdout.lines().map(|l| l.replace(&format!("{}/", dir.0.display()), "")).collect();
    assert_eq!(lines.len(), messages.len(), "one verdict per message\nstdout:\n{stdout}\nstderr:\n{stderr}");
    lines
}

/// Asserts that dkimpy accepts every message; returns its verdicts.
pub fn assert_verified(keys: &[&TestKey], messages: &[(&str, &[u8])]) -> Vec<String> {
    let lines = dkimpy(keys, messages);
    for ((name, _), line) in messages.iter().zip(&lines) {
        assert!(line.starts_with(&format!("PASS {name}.eml ")), "dkimpy rejects {name}: {line}\nall: {lines:#?}");
        assert!(line.contains(" c=relaxed/relaxed "), "{line}");
    }
    lines
}

/// The tags of the message's DKIM-Signature header (whitespace removed from the values), if any.
pub fn signature(raw: &[u8]) -> Option<BTreeMap<String, String>> {
    let text = String::from_utf8_lossy(raw);
    let head = text.split("\r\n\r\n").next().unwrap_or_default().replace("\r\n ", " ").replace("\r\n\t", " ");
    let value = head.lines().find_map(|l| {
        let (name, value) = l.split_once(':')?;
        name.eq_ignore_ascii_case("DKIM-Signature").then(|| value.to_string())
    })?;
    Some(
        value
            .split(';')
            .filter_map(|tag| tag.split_once('='))
            .map(|(t, v)| (t.trim().to_string(), v.split_whitespace().collect::<String>()))
            .collect(),
    )
}

/// Asserts `d=` is `domain` and `h=` covers every required header.
pub fn assert_signed_for(raw: &[u8], domain: &str) {
    let tags = signature(raw).unwrap_or_else(|| panic!("no DKIM-Signature:\n{}", String::from_utf8_lossy(raw)));
    assert_eq!(tags.get("d").map(String::as_str), Some(domain), "d= is the From domain: {tags:?}");
    let signed: Vec<String> = tags["h"].split(':').map(|h| h.to_ascii_lowercase()).collect();
    for header in REQUIRED {
        assert!(signed.iter().any(|h| h == header), "h= lacks {header}: {tags:?}");
    }
}
