//! The Kubernetes manifests cover every service, and say nothing a service does not understand.
//!
//! Renders every overlay of `k8s/overlays` with `kubectl kustomize` and checks, for every service
//! folder in `services/` (so a new service cannot ship without them): its Deployment (`serve
//! <service>`, a `migrate <service>` init container under its own database role, startup, liveness
//! `/healthz` and readiness `/readyz` probes, a grace period above the drain time, a hardened
//! pod), its Service, PodDisruptionBudget and NetworkPolicy, and its NATS user in `deploy/nats`.
//! Then the config keys: every `ARFLOW__` variable a container gets is a key the service's
//! config knows (its `config/default.toml` or a field of its `Config` struct, read from the
//! source), secrets come only from `secretKeyRef`, and every `ARFLOW__` key `deploy/local/stack.sh`
//! sets for `just demo` can be set in the manifests too. Last, each service's real config loader
//! (`Config::load`, as `arflow serve` runs it) accepts exactly the environment its container gets
//! (Secrets replaced by stand-ins), in every overlay.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use serde_yaml_ng::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// Every folder in `services/` with a Cargo.toml.
fn services() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(root().join("services"))
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.path().join("Cargo.toml").exists())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert!(names.len() >= 8, "services/ lists {names:?}");
    names
}

fn overlays() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(root().join("k8s/overlays"))
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert!(names.contains(&"dev".to_string()) && names.contains(&"prod".to_string()), "{names:?}");
    names
}

/// `kubectl kustomize k8s/overlays/<overlay>`, one `Value` per object.
fn render(overlay: &str) -> Vec<Value> {
    let kubectl = std::env::var("KUBECTL").unwrap_or_else(|_| "kubectl".into());
    let out = Command::new(&kubectl)
        .arg("kustomize")
        .arg(root().join("k8s/overlays").join(overlay))
        .output()
        .unwrap_or_else(|e| panic!("{kubectl} kustomize needs kubectl on the PATH (or KUBECTL=...): {e}"));
    assert!(out.status.success(), "kustomize {overlay}: {}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    serde_yaml_ng::Deserializer::from_str(&text)
        .map(|d| serde::Deserialize::deserialize(d).unwrap())
        .filter(|v: &Value| !v.is_null())
        .collect()
}

struct Rendered {
    overlay: String,
    objects: Vec<Value>,
}

impl Rendered {
    fn find(&self, kind: &str, name: &str) -> Option<&Value> {
        self.objects.iter().find(|o| o["kind"].as_str() == Some(kind) && o["metadata"]["name"].as_str() == Some(name))
    }

    fn get(&self, kind: &str, name: &str) -> &Value {
        self.find(kind, name).unwrap_or_else(|| panic!("{}: no {kind} {name}", self.overlay))
    }

    fn of_kind<'a>(&'a self, kind: &'a str) -> impl Iterator<Item = &'a Value> + 'a {
        self.objects.iter().filter(move |o| o["kind"].as_str() == Some(kind))
    }

    /// The environment a container gets: `env` entries and every key of its `envFrom` ConfigMaps.
    fn environment(&self, container: &Value) -> BTreeMap<String, Value> {
        let mut env = BTreeMap::new();
        for from in container["envFrom"].as_sequence().into_iter().flatten() {
            assert!(from["secretRef"].is_null(), "{}: envFrom secretRef hides which keys are set", self.overlay);
            let name = from["configMapRef"]["name"].as_str().unwrap();
            let cm = self.get("ConfigMap", name);
            for (k, v) in cm["data"].as_mapping().into_iter().flatten() {
                env.insert(k.as_str().unwrap().to_string(), v.clone());
            }
        }
        for e in container["env"].as_sequence().into_iter().flatten() {
            env.insert(e["name"].as_str().unwrap().to_string(), e.clone());
        }
        env
    }
}

/// Whether a label selector (`matchLabels`) selects these labels.
fn labels_match(selector: &Value, labels: &Value) -> bool {
    selects(&selector["matchLabels"], labels)
}

/// Whether every label of a non-empty map is among these labels (a Service's selector).
fn selects(wanted: &Value, labels: &Value) -> bool {
    let want = wanted.as_mapping().expect("a label map");
    !want.is_empty() && want.iter().all(|(k, v)| labels.get(k) == Some(v))
}

#[test]
fn every_service_has_its_deployment_probes_pdb_networkpolicy_and_nats_user() {
    let nats_conf = std::fs::read_to_string(root().join("deploy/nats/accounts.conf"))
        .expect("deploy/nats/accounts.conf (the NATS users, from the broker helper)");
    let nats_values = std::fs::read_to_string(root().join("deploy/nats/values.yaml")).expect("deploy/nats/values.yaml");
    let pg: Value = serde_yaml_ng::from_str(
        std::fs::read_to_string(root().join("deploy/postgres/cluster.yaml")).unwrap().split("\n---").next().unwrap(),
    )
    .unwrap();
    assert_eq!(pg["kind"].as_str(), Some("Cluster"), "deploy/postgres/cluster.yaml starts with the CNPG Cluster");
    let pg_cluster = pg["metadata"]["name"].as_str().unwrap().to_string();
    for overlay in overlays() {
        let r = Rendered { overlay: overlay.clone(), objects: render(&overlay) };
        let deny = r
            .of_kind("NetworkPolicy")
            .find(|p| {
                p["spec"]["ingress"].is_null()
                    && p["spec"]["egress"].is_null()
                    && p["spec"]["policyTypes"].as_sequence().map(|t| t.len()) == Some(2)
            })
            .unwrap_or_else(|| panic!("{overlay}: no default-deny NetworkPolicy"));
        for service in services() {
            let name = format!("arflow-{service}");
            let ctx = format!("{overlay}/{service}");
            let d = r.get("Deployment", &name);
            let pod = &d["spec"]["template"]["spec"];
            let pod_labels = &d["spec"]["template"]["metadata"]["labels"];
            assert!(labels_match(&deny["spec"]["podSelector"], pod_labels), "{ctx}: default deny misses the pods");
            let c = pod["containers"].as_sequence().unwrap().first().unwrap();
            assert_eq!(c["args"], serde_yaml_ng::to_value(["serve", service.as_str()]).unwrap(), "{ctx}: args");
            assert_eq!(c["startupProbe"]["httpGet"]["path"].as_str(), Some("/healthz"), "{ctx}: startup probe");
            assert_eq!(c["livenessProbe"]["httpGet"]["path"].as_str(), Some("/healthz"), "{ctx}: liveness probe");
            assert_eq!(c["readinessProbe"]["httpGet"]["path"].as_str(), Some("/readyz"), "{ctx}: readiness probe");
            assert!(!c["resources"]["requests"].is_null() && !c["resources"]["limits"].is_null(), "{ctx}: resources");
            // Drain: fetches stop at once, in-flight handlers finish within the ack wait (30 s).
            let grace = pod["terminationGracePeriodSeconds"].as_u64().unwrap_or(30);
            assert!(grace > 30, "{ctx}: terminationGracePeriodSeconds {grace} is not above the 30 s drain");
            assert!(!pod["topologySpreadConstraints"].as_sequence().unwrap().is_empty(), "{ctx}: topology spread");
            assert_eq!(pod["automountServiceAccountToken"].as_bool(), Some(false), "{ctx}: SA token");
            assert_eq!(pod["serviceAccountName"].as_str(), Some(name.as_str()), "{ctx}: service account");
            r.get("ServiceAccount", &name);
            let init = pod["initContainers"].as_sequence().and_then(|s| s.first()).expect("migrate init container");
            assert_eq!(init["args"], serde_yaml_ng::to_value(["migrate", service.as_str()]).unwrap(), "{ctx}");
            // `arflow migrate` reads only [database]: the init container gets no other secret.
            let init_secrets: Vec<String> = r
                .environment(init)
                .values()
                .filter_map(|v| v["valueFrom"]["secretKeyRef"]["name"].as_str().map(str::to_string))
                .collect();
            assert_eq!(init_secrets, [format!("arflow-db-{service}")], "{ctx}: the migrate container's secrets");
            for container in [c, init] {
                let sc = &container["securityContext"];
                assert_eq!(sc["runAsNonRoot"].as_bool(), Some(true), "{ctx}: runAsNonRoot");
                assert_eq!(sc["readOnlyRootFilesystem"].as_bool(), Some(true), "{ctx}: read-only root");
                assert_eq!(sc["allowPrivilegeEscalation"].as_bool(), Some(false), "{ctx}: privilege escalation");
                assert_eq!(sc["capabilities"]["drop"][0].as_str(), Some("ALL"), "{ctx}: capabilities");
                assert_eq!(sc["seccompProfile"]["type"].as_str(), Some("RuntimeDefault"), "{ctx}: seccomp");
                // The service's own database role, for the migrations as for serving.
                let db = &r.environment(container)["ARFLOW__DATABASE__URL"]["valueFrom"]["secretKeyRef"];
                assert_eq!(db["name"].as_str(), Some(format!("arflow-db-{service}").as_str()), "{ctx}: DB role");
            }
            let port = c["ports"][0]["containerPort"].as_u64().unwrap();
            let svc = r.get("Service", &name);
            assert!(selects(&svc["spec"]["selector"], pod_labels), "{ctx}: Service selector");
            assert_eq!(svc["spec"]["ports"][0]["targetPort"].as_str(), Some("http"), "{ctx}: Service port");
            let env = r.environment(c);
            assert_eq!(env["ARFLOW__HTTP__PORT"].as_str(), Some(port.to_string().as_str()), "{ctx}: http port");
            assert!(
                r.of_kind("PodDisruptionBudget").any(|p| labels_match(&p["spec"]["selector"], pod_labels)),
                "{ctx}: no PodDisruptionBudget"
            );
            let policy = r.get("NetworkPolicy", &name);
            assert!(labels_match(&policy["spec"]["podSelector"], pod_labels), "{ctx}: NetworkPolicy selector");
            // Egress to the broker and to the CloudNativePG cluster of deploy/postgres.
            let egress_to = |labels: &Value| {
                policy["spec"]["egress"].as_sequence().unwrap().iter().any(|rule| {
                    rule["to"]
                        .as_sequence()
                        .into_iter()
                        .flatten()
                        .any(|peer| labels_match(&peer["podSelector"], labels))
                })
            };
            let nats_pods: Value = serde_yaml_ng::from_str("app.kubernetes.io/name: nats").unwrap();
            assert!(egress_to(&nats_pods), "{ctx}: no egress to NATS");
            let pg_pods: Value = serde_yaml_ng::from_str(&format!("cnpg.io/cluster: {pg_cluster}")).unwrap();
            assert!(egress_to(&pg_pods), "{ctx}: no egress to the PostgreSQL cluster {pg_cluster}");
            let user = format!("arflow-{service}");
            assert!(
                nats_conf.contains(&format!("\"{user}\"")) || nats_conf.contains(&format!("user: {user}")),
                "no NATS user {user} in deploy/nats/accounts.conf"
            );
            assert!(nats_values.contains(&format!("user: {user}")), "no NATS user {user} in deploy/nats/values.yaml");
            let nats = &env["NATS_PASSWORD"]["valueFrom"]["secretKeyRef"];
            assert_eq!(nats["name"].as_str(), Some(format!("arflow-nats-{service}").as_str()), "{ctx}: NATS secret");
            let url = env["ARFLOW__NATS__URL"]["value"].as_str().unwrap();
            assert!(url.starts_with(&format!("nats://{user}:$(NATS_PASSWORD)@")), "{ctx}: NATS URL {url}");
        }
        // KEDA scales on durables that exist: the NATS user of that service may pull from each.
        for so in r.of_kind("ScaledObject") {
            let target = so["spec"]["scaleTargetRef"]["name"].as_str().unwrap();
            r.get("Deployment", target);
            for t in so["spec"]["triggers"].as_sequence().unwrap() {
                let m = &t["metadata"];
                let (stream, consumer) = (m["stream"].as_str().unwrap(), m["consumer"].as_str().unwrap());
                let next = format!("$JS.API.CONSUMER.MSG.NEXT.{stream}.{consumer}");
                assert!(
                    nats_values.contains(&next),
                    "{overlay}: {target} scales on {stream}/{consumer}, unknown to NATS"
                );
            }
        }
        // The gateway is reachable from outside over TLS.
        let ingress = r.get("Ingress", "arflow-gateway");
        assert!(!ingress["spec"]["tls"].as_sequence().unwrap().is_empty(), "{overlay}: Ingress without TLS");
    }
}

/// Dotted keys (`section.key`, `gateway.upstreams.voice`) set in a `default.toml` (commented
/// lines are not keys).
fn toml_keys(text: &str) -> BTreeSet<String> {
    let mut section = String::new();
    let mut keys = BTreeSet::new();
    for line in text.lines().map(str::trim) {
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        if let Some(s) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = s.trim().to_string();
        } else if let Some((k, _)) = line.split_once('=') {
            keys.insert(format!("{section}.{}", k.trim()));
        }
    }
    keys
}

/// `struct name -> [(field, type)]` of every `pub struct` in these files (named fields only).
fn structs(files: &[PathBuf]) -> BTreeMap<String, Vec<(String, String)>> {
    let mut out = BTreeMap::new();
    for file in files {
        let text = std::fs::read_to_string(file).unwrap();
        let mut current: Option<(String, Vec<(String, String)>)> = None;
        for line in text.lines() {
            let t = line.trim();
            if let Some(rest) = t.strip_prefix("pub struct ") {
                if let Some(name) = rest.strip_suffix(" {") {
                    current = Some((name.split('<').next().unwrap().trim().to_string(), Vec::new()));
                }
                continue;
            }
            if let Some((name, fields)) = &mut current {
                if line.starts_with('}') {
                    out.entry(name.clone()).or_insert_with(|| fields.clone());
                    current = None;
                } else if let Some((field, ty)) = t.strip_prefix("pub ").and_then(|f| f.split_once(':')) {
                    fields.push((field.trim().to_string(), ty.trim().trim_end_matches(',').to_string()));
                }
            }
        }
    }
    out
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).into_iter().flatten().filter_map(|e| e.ok()) {
        let p = e.path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// Every leaf key the service's `Config` struct can deserialize, walking nested settings structs
/// (the service's own first, then the shared crates').
fn struct_keys(service: &str) -> BTreeSet<String> {
    let mut own = Vec::new();
    rust_files(&root().join("services").join(service).join("src"), &mut own);
    let mut shared = Vec::new();
    for crate_dir in ["runtime", "bus", "service", "store", "core"] {
        rust_files(&root().join("shared").join(crate_dir).join("src"), &mut shared);
    }
    let own = structs(&own);
    let shared = structs(&shared);
    let lookup = |ty: &str| own.get(ty).or_else(|| shared.get(ty)).cloned();
    fn base_type(ty: &str) -> String {
        let ty = ty.trim();
        let ty = ty.strip_prefix("Option<").and_then(|t| t.strip_suffix('>')).unwrap_or(ty);
        ty.rsplit("::").next().unwrap().to_string()
    }
    let mut keys = BTreeSet::new();
    let mut todo = vec![(String::new(), "Config".to_string())];
    while let Some((prefix, ty)) = todo.pop() {
        let fields = lookup(&ty).unwrap_or_else(|| panic!("{service}: struct {ty} not found"));
        for (field, fty) in fields {
            let key = if prefix.is_empty() { field.clone() } else { format!("{prefix}.{field}") };
            let inner = base_type(&fty);
            if lookup(&inner).is_some() && !fty.starts_with("Vec<") {
                todo.push((key, inner));
            } else {
                keys.insert(key);
            }
        }
    }
    keys
}

/// `ARFLOW__GATEWAY__UPSTREAMS__VOICE` -> `gateway.upstreams.voice`.
fn key_of(var: &str) -> Option<String> {
    var.strip_prefix("ARFLOW__").map(|k| k.to_ascii_lowercase().replace("__", "."))
}

fn is_secret(key: &str) -> bool {
    let last = key.rsplit('.').next().unwrap();
    matches!(last, "token" | "auth_token" | "admin_token" | "password" | "secret" | "account_sid" | "api_key")
        || key == "database.url"
        || key == "smtp.username"
}

#[test]
fn every_config_key_in_the_manifests_is_known_and_secrets_come_from_secrets() {
    let mut known = BTreeMap::new();
    for service in services() {
        let defaults = std::fs::read_to_string(root().join(format!("services/{service}/config/default.toml"))).unwrap();
        let from_toml = toml_keys(&defaults);
        let from_struct = struct_keys(&service);
        // The struct reading covers the defaults file: if not, the reading above is broken.
        for k in &from_toml {
            assert!(from_struct.contains(k), "{service}: default.toml key {k} not found in its Config struct");
        }
        known.insert(service, from_struct);
    }
    for overlay in overlays() {
        let r = Rendered { overlay: overlay.clone(), objects: render(&overlay) };
        for (service, keys) in &known {
            let d = r.get("Deployment", &format!("arflow-{service}"));
            let pod = &d["spec"]["template"]["spec"];
            for c in pod["containers"].as_sequence().unwrap().iter().chain(pod["initContainers"].as_sequence().unwrap())
            {
                for (var, value) in r.environment(c) {
                    let Some(key) = key_of(&var) else { continue };
                    assert!(keys.contains(&key), "{overlay}/{service}: {var} is not a key of its config ({key})");
                    let from_secret = !value["valueFrom"]["secretKeyRef"].is_null();
                    if is_secret(&key) {
                        assert!(from_secret, "{overlay}/{service}: {var} must come from a secretKeyRef");
                    }
                    if key == "nats.url" {
                        // Its password part comes from the Secret (checked in the other test).
                        continue;
                    }
                    assert!(
                        value.is_string() || from_secret || !value["value"].is_null(),
                        "{overlay}/{service}: {var} has no value"
                    );
                }
            }
        }
        // No ConfigMap carries a secret.
        for cm in r.of_kind("ConfigMap") {
            for (k, _) in cm["data"].as_mapping().into_iter().flatten() {
                let var = k.as_str().unwrap();
                if let Some(key) = key_of(var) {
                    assert!(
                        !is_secret(&key),
                        "{overlay}: ConfigMap {} holds the secret {var}",
                        cm["metadata"]["name"].as_str().unwrap_or("?")
                    );
                }
            }
        }
    }
}

#[test]
fn every_key_the_local_stack_sets_is_set_in_the_manifests() {
    let stack = std::fs::read_to_string(root().join("deploy/local/stack.sh")).unwrap();
    let vars: BTreeSet<String> = stack
        .lines()
        .filter_map(|l| l.trim().strip_prefix("export "))
        .filter_map(|l| l.split_once('=').map(|(k, _)| k.to_string()))
        .filter(|k| k.starts_with("ARFLOW__"))
        .collect();
    assert!(vars.len() >= 10, "stack.sh exports {vars:?}");
    // service -> variables its containers get, in any overlay
    let mut set: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for overlay in overlays() {
        let r = Rendered { overlay: overlay.clone(), objects: render(&overlay) };
        for service in services() {
            let d = r.get("Deployment", &format!("arflow-{service}"));
            let c = &d["spec"]["template"]["spec"]["containers"][0];
            set.entry(service).or_default().extend(r.environment(c).into_keys());
        }
    }
    for var in &vars {
        let key = key_of(var).unwrap();
        let knowing: Vec<String> = services().into_iter().filter(|s| struct_keys(s).contains(&key)).collect();
        assert!(!knowing.is_empty(), "stack.sh sets {var}, which no service's config knows");
        for service in knowing {
            assert!(set[&service].contains(var), "stack.sh sets {var} for {service}; no overlay sets it for {service}");
        }
    }
}

/// A stand-in for a Secret's value, shaped like the real one where the config checks the shape.
fn secret_stand_in(var: &str) -> String {
    match key_of(var).as_deref() {
        Some("database.url") => "postgres://arflow_k8s:password@arflow-db-rw:5432/arflow?sslmode=require".into(),
        Some("telephony.account_sid") => format!("AC{}", "0".repeat(32)),
        _ => "k8s-check-secret-0123456789abcdef".into(),
    }
}

/// The variables a container gets, as the kubelet would set them (Secrets replaced by
/// stand-ins, `$(VAR)` expanded from the earlier entries).
fn container_env(r: &Rendered, container: &Value) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for (name, value) in r.environment(container) {
        if !value["valueFrom"]["secretKeyRef"].is_null() {
            out.push((name.clone(), secret_stand_in(&name)));
        } else if let Some(v) = value.as_str() {
            out.push((name, v.to_string()));
        } else if let Some(v) = value["value"].as_str() {
            out.push((name, v.to_string()));
        }
    }
    let known: Vec<(String, String)> = out.clone();
    for (_, v) in out.iter_mut() {
        for (k, kv) in &known {
            *v = v.replace(&format!("$({k})"), kv);
        }
    }
    out
}

/// Loads one service's configuration the way `arflow serve` does, from this process's
/// environment, when the parent test (below) runs this binary again for it; otherwise a no-op.
#[test]
fn load_config_from_the_environment() {
    use arflow_runtime::ServiceConfig;
    let Ok(service) = std::env::var("ARFLOW_K8S_LOAD_CONFIG") else { return };
    let loaded = match service.as_str() {
        "gateway" => arflow_gateway::Config::load().map(|_| ()),
        "eligibility" => arflow_eligibility::Config::load().map(|_| ()),
        "scheduler" => arflow_scheduler::Config::load().map(|_| ()),
        "email" => arflow_email::Config::load().map(|_| ()),
        "optout" => arflow_optout::Config::load().map(|_| ()),
        "escalation" => arflow_escalation::Config::load().map(|_| ()),
        "notification" => arflow_notification::Config::load().map(|_| ()),
        "voice" => arflow_voice::Config::load().map(|_| ()),
        other => panic!("no config loader for service {other}: add it here"),
    };
    if let Err(e) = loaded {
        panic!("{service}: {e}");
    }
}

#[test]
fn every_service_accepts_the_configuration_the_manifests_give_it() {
    let me = std::env::current_exe().unwrap();
    for overlay in overlays() {
        let r = Rendered { overlay: overlay.clone(), objects: render(&overlay) };
        for service in services() {
            let d = r.get("Deployment", &format!("arflow-{service}"));
            let c = &d["spec"]["template"]["spec"]["containers"][0];
            // Only the container's environment: nothing from this shell or the local stack.
            let out = Command::new(&me)
                .args(["--exact", "load_config_from_the_environment", "--nocapture", "--test-threads", "1"])
                .env_clear()
                .envs(container_env(&r, c))
                .env("ARFLOW_K8S_LOAD_CONFIG", &service)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{overlay}/{service} refuses the manifests' configuration:\n{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}

/// The `ARFLOW__` variables `deploy/local/stack.sh` exports, evaluated by bash as the stack does
/// (its ports, database URL and random secrets stood in for).
fn local_stack_environment() -> Vec<(String, String)> {
    let stack = std::fs::read_to_string(root().join("deploy/local/stack.sh")).unwrap();
    let exports: Vec<&str> = stack.lines().map(str::trim).filter(|l| l.starts_with("export ARFLOW__")).collect();
    let script = format!(
        "random_hex() {{ head -c \"$1\" /dev/urandom | od -An -tx1 | tr -d ' \\n'; }}\n\
         NATS_PORT=14222 SMTP_PORT=1025 TELEPHONY_PORT=18087 GATEWAY_URL=http://127.0.0.1:8080\n\
         DB_URL=postgres://postgres@127.0.0.1:15432/arflow_demo\n{}\nenv -0",
        exports.join("\n")
    );
    let out = Command::new("bash").args(["-euc", &script]).env_clear().output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout)
        .unwrap()
        .split('\0')
        .filter_map(|kv| kv.split_once('='))
        .filter(|(k, _)| k.starts_with("ARFLOW__"))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The local stack (`just demo`) starts every service: each accepts what the stack sets (a secret
/// a service needs and the stack forgot, such as the unsubscribe links', fails here rather than
/// at the click).
#[test]
fn every_service_accepts_the_configuration_the_local_stack_gives_it() {
    let env = local_stack_environment();
    assert!(env.iter().any(|(k, _)| k == "ARFLOW__UNSUBSCRIBE__SECRET"), "{env:?}");
    let me = std::env::current_exe().unwrap();
    for service in services() {
        let out = Command::new(&me)
            .args(["--exact", "load_config_from_the_environment", "--nocapture", "--test-threads", "1"])
            .env_clear()
            .envs(env.iter().cloned())
            .env("ARFLOW_K8S_LOAD_CONFIG", &service)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{service} refuses the local stack's configuration:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
