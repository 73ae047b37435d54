//! OpenAPI checks shared by the services' tests: the pinned `openapi-spec-validator`
//! (`deploy/local/requirements.txt`, installed into `.tools/venv` by `deploy/local/setup.sh`).
use serde_json::Value;
use std::process::Command;

/// Runs `openapi-spec-validator` on `doc` and fails the test with every error it reports.
/// A missing validator fails too (it is never skipped): run `deploy/local/setup.sh`.
pub fn assert_valid(name: &str, doc: &Value) {
    let validator = crate::repo_root().join(".tools/venv/bin/openapi-spec-validator");
    assert!(
        validator.is_file(),
        "{} is missing: run `bash deploy/local/setup.sh` (it installs the pinned openapi-spec-validator)",
        validator.display()
    );
    let dir = tempfile_dir();
    let file = dir.join(format!("{name}.openapi.json"));
    std::fs::write(&file, serde_json::to_vec_pretty(doc).expect("document as JSON")).expect("write the document");
    let out = Command::new(&validator)
        .args(["--validation-errors", "all", "--subschema-errors", "all"])
        .arg(&file)
        .output()
        .unwrap_or_else(|e| panic!("run {}: {e}", validator.display()));
    let _ = std::fs::remove_dir_all(&dir);
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "openapi-spec-validator rejects the {name} document:\n{text}");
    assert!(text.contains(": OK"), "openapi-spec-validator did not say OK for the {name} document:\n{text}");
}

/// A fresh folder of this process under the system's temporary directory.
fn tempfile_dir() -> std::path::PathBuf {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "arflow-openapi-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    std::fs::create_dir_all(&dir).expect("temporary folder");
    dir
}
