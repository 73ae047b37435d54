//! The operators' dashboard and alerts name only metrics the services really export.
//!
//! Reads `deploy/observability/grafana-dashboard.json` (Grafana) and
//! `deploy/observability/alerts.yaml` (a Prometheus Operator `PrometheusRule`), checks their
//! shape (the `${datasource}` and `service` variables, every alert's `for`, severity, summary,
//! description and runbook), takes every `arflow_*` metric out of their PromQL, then starts the
//! whole stack (`TestApp`), sends one reminder email through it, scrapes `/metrics` from each of
//! the eight running services and checks that each metric is a family one of them exposes, of a
//! kind that fits (`_total` of a counter, `_bucket`/`_sum`/`_count` of a histogram, a gauge by its
//! name), and that `rate`/`increase`/`histogram_quantile` are only applied where they mean
//! something.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use arflow_tests::{SERVICES, TestApp, start_time};
use chrono::{Duration, NaiveDate};
use serde_json::Value as Json;
use serde_yaml_ng::Value as Yaml;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

fn dashboard() -> Json {
    let path = root().join("deploy/observability/grafana-dashboard.json");
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap_or_else(|e| panic!("{path:?}: {e}"))
}

fn rule() -> Yaml {
    let path = root().join("deploy/observability/alerts.yaml");
    serde_yaml_ng::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap_or_else(|e| panic!("{path:?}: {e}"))
}

/// Every PromQL expression of the dashboard: panel targets and variable queries, as
/// `(where, expr)`.
fn dashboard_exprs(d: &Json) -> Vec<(String, String)> {
    fn walk(v: &Json, at: &str, out: &mut Vec<(String, String)>) {
        match v {
            Json::Object(m) => {
                let here = m.get("title").and_then(Json::as_str).map_or(at.to_string(), |t| format!("panel {t:?}"));
                for (k, v) in m {
                    match (k.as_str(), v) {
                        ("expr" | "definition" | "query", Json::String(s)) => out.push((here.clone(), s.clone())),
                        _ => walk(v, &here, out),
                    }
                }
            }
            Json::Array(a) => a.iter().for_each(|v| walk(v, at, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(d, "dashboard", &mut out);
    out
}

fn alert_rules(r: &Yaml) -> Vec<&Yaml> {
    r["spec"]["groups"]
        .as_sequence()
        .expect("spec.groups")
        .iter()
        .flat_map(|g| g["rules"].as_sequence().expect("a group's rules"))
        .collect()
}

/// `(where, expr)` of every alert.
fn rule_exprs(r: &Yaml) -> Vec<(String, String)> {
    alert_rules(r)
        .into_iter()
        .map(|a| (format!("alert {}", a["alert"].as_str().unwrap()), a["expr"].as_str().unwrap().to_string()))
        .collect()
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == ':'
}

/// The expression with its string literals (label values, `"5.."`) blanked out.
fn without_strings(expr: &str) -> String {
    let (mut out, mut quote, mut escaped) = (String::with_capacity(expr.len()), None, false);
    for c in expr.chars() {
        match quote {
            Some(q) => {
                if escaped {
                    escaped = false;
                } else if c == '\\' {
                    escaped = true;
                } else if c == q {
                    quote = None;
                }
                out.push(if quote.is_none() { c } else { ' ' });
            }
            None => {
                if matches!(c, '"' | '\'' | '`') {
                    quote = Some(c);
                }
                out.push(c);
            }
        }
    }
    out
}

/// Every `arflow_[a-z0-9_]+` metric name of a PromQL expression (not inside a longer name or a
/// string).
fn metric_names(expr: &str) -> Vec<String> {
    let stripped = without_strings(expr);
    let expr = stripped.as_str();
    let mut out = Vec::new();
    let mut rest = expr;
    let mut offset = 0;
    while let Some(i) = rest.find("arflow_") {
        let at = offset + i;
        let before = expr[..at].chars().next_back();
        let name: String =
            expr[at..].chars().take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_').collect();
        if !before.is_some_and(is_ident) {
            out.push(name.clone());
        }
        offset = at + name.len();
        rest = &expr[offset..];
    }
    out
}

/// Metrics passed directly to `rate(`/`increase(` (what a range function of a counter reads).
fn rated(expr: &str) -> Vec<String> {
    let mut out = Vec::new();
    for f in ["rate(", "increase("] {
        for (i, _) in expr.match_indices(f) {
            if expr[..i].chars().next_back().is_some_and(is_ident) {
                continue; // irate(, some_rate(
            }
            let arg = expr[i + f.len()..].trim_start();
            if let Some(name) = metric_names(arg).into_iter().next()
                && arg.starts_with(name.as_str())
            {
                out.push((i, name));
            }
        }
    }
    out.sort();
    out.into_iter().map(|(_, name)| name).collect()
}

/// One scrape in the text format: family name -> type (from `# TYPE`), and the sample lines.
struct Scrape {
    service: String,
    families: BTreeMap<String, String>,
    samples: Vec<String>,
}

fn parse(text: &str) -> (BTreeMap<String, String>, Vec<String>) {
    let mut families = BTreeMap::new();
    let mut samples = Vec::new();
    for line in text.lines() {
        if let Some(t) = line.strip_prefix("# TYPE ") {
            let (name, kind) = t.split_once(' ').unwrap_or_else(|| panic!("bad TYPE line {line:?}"));
            families.insert(name.to_string(), kind.trim().to_string());
        } else if !line.starts_with('#') && !line.trim().is_empty() {
            samples.push(line.to_string());
        }
    }
    (families, samples)
}

impl Scrape {
    fn has_sample(&self, prefix: &str) -> bool {
        self.samples.iter().any(|s| s.starts_with(prefix))
    }
}

/// Whether `name` (as PromQL names it) is a series of one of these families, and of which kind.
fn exported_kind(families: &BTreeMap<String, String>, name: &str) -> Option<(&'static str, String)> {
    let kind_of = |base: &str| families.get(base).map(String::as_str);
    if kind_of(name) == Some("gauge") {
        return Some(("gauge", name.to_string()));
    }
    if let Some(base) = name.strip_suffix("_total")
        && kind_of(base) == Some("counter")
    {
        return Some(("counter", base.to_string()));
    }
    for suffix in ["_bucket", "_sum", "_count"] {
        if let Some(base) = name.strip_suffix(suffix)
            && kind_of(base) == Some("histogram")
        {
            return Some((if suffix == "_bucket" { "bucket" } else { "histogram_part" }, base.to_string()));
        }
    }
    None
}

/// The TCP ports this process listens on (`/proc/self/net/tcp{,6}`, sockets among its own
/// descriptors): the services `TestApp` started in-process, among others.
fn own_listening_ports() -> BTreeSet<u16> {
    let mut inodes = BTreeSet::new();
    for fd in std::fs::read_dir("/proc/self/fd").expect("/proc/self/fd (Linux)").filter_map(|e| e.ok()) {
        if let Ok(target) = std::fs::read_link(fd.path())
            && let Some(inode) = target.to_string_lossy().strip_prefix("socket:[").and_then(|s| s.strip_suffix(']'))
        {
            inodes.insert(inode.to_string());
        }
    }
    let mut ports = BTreeSet::new();
    for table in ["/proc/self/net/tcp", "/proc/self/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(table) else { continue };
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            // sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode
            if f.len() > 9 && f[3] == "0A" && inodes.contains(f[9]) {
                let port = f[1].rsplit(':').next().unwrap();
                ports.insert(u16::from_str_radix(port, 16).unwrap());
            }
        }
    }
    ports
}

/// `/metrics` of every arflow service listening in this process, by its `service` label.
async fn scrape_services(app: &TestApp) -> BTreeMap<String, Scrape> {
    let http = reqwest::Client::builder().timeout(std::time::Duration::from_secs(5)).build().unwrap();
    let mut out = BTreeMap::new();
    for port in own_listening_ports() {
        if port == app.smtp.port() {
            continue; // SMTP answers with a banner, not HTTP
        }
        let Ok(r) = http.get(format!("http://127.0.0.1:{port}/metrics")).send().await else { continue };
        if !r.status().is_success() {
            continue;
        }
        let Ok(text) = r.text().await else { continue };
        if !text.contains("# TYPE arflow_") {
            continue;
        }
        let (families, samples) = parse(&text);
        let service = samples
            .iter()
            .find_map(|s| s.split_once("service=\"").and_then(|(_, r)| r.split_once('"')).map(|(v, _)| v.to_string()))
            .unwrap_or_else(|| panic!("port {port}: no sample carries the service label:\n{text}"));
        for s in samples.iter().filter(|s| s.starts_with("arflow_")) {
            assert!(
                s.contains(&format!("service=\"{service}\"")),
                "{service}: a sample without its service label: {s}"
            );
        }
        assert!(
            out.insert(service.clone(), Scrape { service: service.clone(), families, samples }).is_none(),
            "two listeners expose service {service}"
        );
    }
    out
}

#[test]
fn dashboard_has_its_variables_and_every_panel_reads_the_datasource_variable() {
    let d = dashboard();
    assert_eq!(d["schemaVersion"], 39);
    let vars = d["templating"]["list"].as_array().expect("templating.list");
    let var = |name: &str| vars.iter().find(|v| v["name"] == name).unwrap_or_else(|| panic!("no variable {name}"));
    let ds = var("datasource");
    assert_eq!((ds["type"].as_str(), ds["query"].as_str()), (Some("datasource"), Some("prometheus")));
    let service = var("service");
    assert_eq!(service["datasource"]["uid"], "${datasource}");
    assert_eq!(service["query"]["query"], "label_values(arflow_events_consumed_total, service)");
    let mut ids = BTreeSet::new();
    let mut with_queries = 0;
    for p in d["panels"].as_array().unwrap() {
        let title = p["title"].as_str().unwrap_or("?");
        assert!(ids.insert(p["id"].as_i64().unwrap()), "panel id of {title:?} repeated");
        for k in ["h", "w", "x", "y"] {
            assert!(p["gridPos"][k].is_u64(), "panel {title:?}: gridPos.{k}");
        }
        assert!(p["gridPos"]["x"].as_u64().unwrap() + p["gridPos"]["w"].as_u64().unwrap() <= 24, "{title:?} overflows");
        if p["type"] == "row" {
            continue;
        }
        assert_eq!(p["datasource"]["uid"], "${datasource}", "panel {title:?}");
        let targets = p["targets"].as_array().unwrap_or_else(|| panic!("panel {title:?} has no targets"));
        assert!(!targets.is_empty(), "panel {title:?} has no targets");
        for t in targets {
            assert_eq!(t["datasource"]["uid"], "${datasource}", "panel {title:?}");
            let expr = t["expr"].as_str().unwrap();
            assert!(!metric_names(expr).is_empty(), "panel {title:?}: {expr} names no arflow metric");
            // Per-service panels follow the variable; stream-wide ones (every service samples the
            // same streams) need not.
            assert!(
                expr.contains("$service")
                    || expr.contains("arflow_stream_")
                    || expr.contains("arflow_domain_total{name="),
                "panel {title:?}: {expr} ignores $service"
            );
        }
        with_queries += 1;
    }
    assert!(with_queries >= 20, "only {with_queries} panels");
}

/// The anchors GitHub gives the headings of a Markdown file (`## Replay the DLQ` ->
/// `replay-the-dlq`).
fn anchors(markdown: &str) -> BTreeSet<String> {
    markdown
        .lines()
        .filter_map(|l| l.strip_prefix('#'))
        .map(|h| {
            h.trim_start_matches('#')
                .trim()
                .to_lowercase()
                .chars()
                .filter(|c| c.is_alphanumeric() || matches!(c, ' ' | '-' | '_'))
                .map(|c| if c == ' ' { '-' } else { c })
                .collect()
        })
        .collect()
}

#[test]
fn every_alert_has_for_severity_summary_description_and_runbook() {
    let runbook_anchors = anchors(&std::fs::read_to_string(root().join("docs/operations.md")).unwrap());
    let r = rule();
    assert_eq!(r["apiVersion"], "monitoring.coreos.com/v1");
    assert_eq!(r["kind"], "PrometheusRule");
    assert_eq!(r["metadata"]["namespace"], "arflow");
    assert_eq!(r["metadata"]["labels"]["app.kubernetes.io/part-of"], "arflow");
    let mut names = BTreeSet::new();
    for a in alert_rules(&r) {
        let name = a["alert"].as_str().expect("every rule is an alert");
        assert!(names.insert(name.to_string()), "alert {name} twice");
        let f = a["for"].as_str().unwrap_or_else(|| panic!("{name}: no for"));
        assert!(
            f.len() > 1 && f[..f.len() - 1].chars().all(|c| c.is_ascii_digit()) && f.ends_with(['s', 'm', 'h']),
            "{name}: for {f:?}"
        );
        assert!(
            matches!(a["labels"]["severity"].as_str(), Some("critical" | "warning" | "info")),
            "{name}: severity {:?}",
            a["labels"]["severity"]
        );
        for k in ["summary", "description"] {
            assert!(a["annotations"][k].as_str().is_some_and(|s| !s.trim().is_empty()), "{name}: no {k}");
        }
        let runbook = a["annotations"]["runbook_url"].as_str().unwrap_or_else(|| panic!("{name}: no runbook_url"));
        let anchor = runbook.strip_prefix("docs/operations.md#").unwrap_or_else(|| panic!("{name}: {runbook}"));
        assert!(
            !anchor.is_empty() && anchor.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'),
            "{name}: anchor {anchor:?}"
        );
        assert!(runbook_anchors.contains(anchor), "{name}: docs/operations.md has no section #{anchor}");
    }
    // What the issue asks to be alerted on.
    let exprs: String = rule_exprs(&r).into_iter().map(|(_, e)| e + "\n").collect();
    for needle in [
        "arflow_stream_bytes{stream=\"DLQ\"}",
        "outcome=\"dead_lettered\"",
        "arflow_consumer_pending",
        "arflow_consumer_circuit_open",
        "arflow_handler_panics_total",
        "arflow_holds_bucket_errors_total",
        "reason=\"hold_undecodable\"",
        "dependency=\"smtp\"",
        "name=\"emails_uncertain\"",
        "arflow_db_pool_timeouts_total",
        "max by (stream) (arflow_stream_max_bytes)",
        "up{job=~\"arflow-.*\"} == 0",
    ] {
        assert!(exprs.contains(needle), "no alert reads {needle}");
    }
}

#[test]
fn the_rule_is_in_the_prod_overlay() {
    let k = std::fs::read_to_string(root().join("k8s/overlays/prod/kustomization.yaml")).unwrap();
    let k: Yaml = serde_yaml_ng::from_str(&k).unwrap();
    let resources: Vec<&str> = k["resources"].as_sequence().unwrap().iter().filter_map(Yaml::as_str).collect();
    assert!(resources.contains(&"../../../deploy/observability"), "prod overlay resources: {resources:?}");
    let own = std::fs::read_to_string(root().join("deploy/observability/kustomization.yaml")).unwrap();
    let own: Yaml = serde_yaml_ng::from_str(&own).unwrap();
    assert_eq!(own["resources"][0], "alerts.yaml");
}

#[test]
fn metric_names_are_taken_out_of_promql() {
    assert_eq!(
        metric_names(r#"sum(rate(arflow_a_total{x="arflow_not"}[5m])) / xarflow_b + arflow_c_bucket"#),
        ["arflow_a_total", "arflow_c_bucket"]
    );
    let md = "# Operations\n## Rotate Stripe, SMTP and telephony secrets\n### Faults: what survives what\n";
    assert!(anchors(md).contains("rotate-stripe-smtp-and-telephony-secrets"));
    assert!(anchors(md).contains("faults-what-survives-what"));
    assert_eq!(
        rated("increase(arflow_a_total[5m]) + irate(arflow_b[1m]) + rate( arflow_c_count[1m])"),
        ["arflow_a_total", "arflow_c_count"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_metric_of_the_dashboard_and_the_alerts_is_exported_by_a_running_service() {
    let mut uses: Vec<(String, String)> = dashboard_exprs(&dashboard());
    uses.extend(rule_exprs(&rule()));
    let named: BTreeSet<String> = uses.iter().flat_map(|(_, e)| metric_names(e)).collect();
    assert!(named.len() >= 20, "the dashboard and alerts name only {named:?}");

    // The real stack, and one reminder email through it (gateway, eligibility, scheduler, email).
    let app = TestApp::spawn().await;
    let firm = app.create_firm().await;
    app.add_client(&firm, "cus_observed", "Birch Optics", "long_standing", "America/New_York").await;
    let due = NaiveDate::from_ymd_opt(2026, 3, 10).unwrap();
    let invoice = app.finalize_invoice(&firm, "in_observed", "cus_observed", 125_000, "usd", due).await;
    app.process_until_idle().await;
    app.advance(Duration::days((due - start_time().date_naive()).num_days())).await;
    assert!(!app.emails_for(invoice).is_empty(), "a reminder went out by the due date");

    // Scrape until every service answers and the traffic shows in the counters.
    let scrapes = arflow_testkit::eventually(
        "every service's /metrics, with the email sent and the streams sampled",
        std::time::Duration::from_secs(60),
        || async {
            let s = scrape_services(&app).await;
            let ready =
                SERVICES.iter().all(|name| s.get(*name).is_some_and(|m| m.has_sample("arflow_stream_max_bytes{")))
                    && s.get("email").is_some_and(|m| {
                        m.samples
                            .iter()
                            .any(|l| l.starts_with("arflow_domain_total{") && l.contains("name=\"emails_sent\""))
                            && m.samples.iter().any(|l| {
                                l.starts_with("arflow_dependency_seconds_count{") && l.contains("dependency=\"smtp\"")
                            })
                    })
                    && s.get("gateway").is_some_and(|m| m.has_sample("arflow_http_requests_total{"));
            ready.then_some(s)
        },
    )
    .await;
    let found: BTreeSet<&str> = scrapes.keys().map(String::as_str).collect();
    assert_eq!(found, SERVICES.iter().copied().collect(), "services scraped");
    assert_eq!(scrapes["gateway"].service, "gateway");

    // Each name must be a family some running service exposes, read the way its type allows.
    let mut kinds: BTreeMap<String, (&'static str, String)> = BTreeMap::new();
    for name in &named {
        let hit = scrapes.values().find_map(|s| exported_kind(&s.families, name).map(|k| (s.service.clone(), k)));
        let Some((_, kind)) = hit else {
            let exported: BTreeSet<&String> = scrapes.values().flat_map(|s| s.families.keys()).collect();
            let users: Vec<&String> =
                uses.iter().filter(|(_, e)| metric_names(e).contains(name)).map(|(w, _)| w).collect();
            panic!("{name} (used by {users:?}) is exported by no service; families: {exported:?}");
        };
        kinds.insert(name.clone(), kind);
    }
    for (at, expr) in &uses {
        for name in rated(expr) {
            let (kind, _) = &kinds[&name];
            assert!(kind != &"gauge", "{at}: rate/increase of the gauge {name}: {expr}");
        }
        if expr.contains("histogram_quantile(") {
            assert!(
                metric_names(expr).iter().all(|n| kinds[n].0 == "bucket"),
                "{at}: histogram_quantile reads a histogram's _bucket series: {expr}"
            );
        }
        for name in metric_names(expr) {
            if kinds[&name].0 == "bucket" {
                assert!(
                    expr.contains("histogram_quantile(") && expr.contains(" le)"),
                    "{at}: {name} without le: {expr}"
                );
            }
        }
    }
    // Everything the registry defines is on the dashboard (a new family needs a panel).
    let used_families: BTreeSet<&String> = kinds.values().map(|(_, base)| base).collect();
    let registry = parse(&arflow_runtime::Metrics::new("x").encode()).0;
    for family in registry.keys() {
        assert!(used_families.contains(family), "{family} is exported but on no panel or alert");
    }
}
