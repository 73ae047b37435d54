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

/// Compares `doc` with the committed document at `path` (as JSON values: key order does not
/// matter); with `UPDATE_OPENAPI=1` set, writes it instead. `refresh` is the command that does.
pub fn assert_committed(path: &std::path::Path, doc: &Value, refresh: &str) {
    let text = serde_json::to_string_pretty(doc).expect("document as JSON") + "\n";
    if std::env::var_os("UPDATE_OPENAPI").is_some() {
        std::fs::write(path, text).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        return;
    }
    let committed = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{} cannot be read ({e}): run `{refresh}`", path.display()));
    let committed: Value =
        serde_json::from_str(&committed).unwrap_or_else(|e| panic!("{} is not JSON ({e})", path.display()));
    assert!(committed == *doc, "{} differs from what the routes document: run `{refresh}`", path.display());
}

/// Every operation of the document: (method in capitals, path template).
pub fn operations(doc: &Value) -> Vec<(String, String)> {
    const METHODS: [&str; 8] = ["get", "put", "post", "delete", "options", "head", "patch", "trace"];
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("the document has paths") {
        for method in METHODS {
            if item.get(method).is_some() {
                out.push((method.to_uppercase(), path.clone()));
            }
        }
    }
    out
}

/// The template with every `{parameter}` filled: a fresh UUID for ids, a value the route takes
/// for the few that are words (`event` of the telephony callbacks, `token` of unsubscribe links).
pub fn sample_path(template: &str) -> String {
    let mut out = String::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        let close = rest[open..].find('}').map(|c| open + c).expect("a closed path parameter");
        out.push_str(&rest[..open]);
        out.push_str(&match &rest[open + 1..close] {
            "event" => "status".to_string(),
            "token" => "not-a-token".to_string(),
            _ => uuid::Uuid::now_v7().to_string(),
        });
        rest = &rest[close + 1..];
    }
    out.push_str(rest);
    out
}

/// Whether an answer is the router's own "no such route" (axum's 404 without a body type, or 405)
/// rather than a handler's answer (every handler's 404 is an `application/problem+json`).
pub fn unrouted(status: u16, content_type: Option<&str>) -> bool {
    status == 405 || (status == 404 && !content_type.is_some_and(|c| c.starts_with("application/problem+json")))
}

/// Everything a service behind the gateway promises of its document: the committed
/// `<manifest_dir>/openapi.json` is what its routes document (`UPDATE_OPENAPI=1` rewrites it), it
/// is valid OpenAPI, and every path is under a prefix the gateway forwards to it.
pub fn check_service_document(service: &str, manifest_dir: &str, doc: &Value, prefixes: &[&str]) {
    let refresh = format!("UPDATE_OPENAPI=1 cargo nextest run -p arflow-{service} --test openapi");
    assert_committed(&std::path::Path::new(manifest_dir).join("openapi.json"), doc, &refresh);
    assert_valid(service, doc);
    for (_, path) in operations(doc) {
        assert!(prefixes.iter().any(|p| path == *p || path.starts_with(&format!("{p}/"))), "{service}: {path}");
    }
}

/// What one documented operation answered.
#[derive(Debug)]
pub struct Answer {
    pub method: String,
    pub template: String,
    pub path: String,
    pub status: u16,
    pub content_type: Option<String>,
}

impl Answer {
    /// Served by nobody: the router's bare 404 or a 405 (see [`unrouted`]).
    pub fn unrouted(&self) -> bool {
        unrouted(self.status, self.content_type.as_deref())
    }
}

/// Calls every operation of `doc` that `keep(method, template)` selects, at `base` with `key`
/// and a `{}` JSON body, its path parameters filled by [`sample_path`].
pub async fn call_each(
    http: &reqwest::Client,
    base: &str,
    key: &str,
    doc: &Value,
    keep: impl Fn(&str, &str) -> bool,
) -> Vec<Answer> {
    let mut answers = Vec::new();
    for (method, template) in operations(doc) {
        if !keep(&method, &template) {
            continue;
        }
        let path = sample_path(&template);
        let r = http
            .request(method.parse().expect("a documented method"), format!("{base}{path}"))
            .bearer_auth(key)
            .header("content-type", "application/json")
            .body("{}")
            .send()
            .await
            .expect("the request is answered");
        let content_type = r.headers().get("content-type").and_then(|v| v.to_str().ok()).map(str::to_string);
        answers.push(Answer { method, template, path, status: r.status().as_u16(), content_type });
    }
    answers
}
