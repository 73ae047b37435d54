//! Keys and tokens (list, scopes, expiry, revocation, rotation with an overlap, the audit log) and
//! Idempotency-Key (claimed first, bound to the request, never storing a secret, 24 hours).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use serde_json::{Value, json};
use support::{SECRET, TestApp, spawn_app};

async fn problem(r: reqwest::Response, status: u16, kind: &str) -> Value {
    assert_eq!(r.status().as_u16(), status);
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    let body: Value = r.json().await.unwrap();
    assert!(body["type"].as_str().unwrap().ends_with(kind), "{body}");
    body
}

impl TestApp {
    async fn post_json(&self, key: &str, path: &str, body: Value) -> reqwest::Response {
        self.http.post(self.url(path)).bearer_auth(key).json(&body).send().await.unwrap()
    }

    async fn new_key(&self, admin: &str, scope: &str) -> (String, String) {
        let r =
            self.post_json(admin, "/v1/firm/api-keys", json!({"name": format!("{scope} key"), "scope": scope})).await;
        assert_eq!(r.status(), 201);
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["key"]["scope"], scope);
        (body["id"].as_str().unwrap().into(), body["api_key"].as_str().unwrap().into())
    }
}

#[tokio::test]
async fn scopes_read_write_admin_are_enforced_on_every_kind_of_write() {
    let app = spawn_app().await;
    let firm = app.create_firm(&[SECRET]).await;
    let (_, read) = app.new_key(&firm.key, "read").await;
    let (_, write) = app.new_key(&firm.key, "write").await;
    // Read: every GET, no write of any kind.
    assert_eq!(app.get(&read, "/v1/firm").await.status(), 200);
    assert_eq!(app.get(&read, "/v1/clients").await.status(), 200);
    problem(app.post_json(&read, "/v1/clients", json!({"name": "Initech"})).await, 403, "forbidden").await;
    let patch = |key: &str, body: Value| app.http.patch(app.url("/v1/firm")).bearer_auth(key).json(&body).send();
    problem(patch(&read, json!({"name": "x"})).await.unwrap(), 403, "forbidden").await;
    problem(app.post_json(&read, "/v1/consent/opt-outs", json!({})).await, 403, "forbidden").await;
    // Write: records, but not the Stripe secrets, keys, tokens or notification endpoints.
    assert_eq!(app.post_json(&write, "/v1/clients", json!({"name": "Initech"})).await.status(), 201);
    assert_eq!(patch(&write, json!({"name": "Acme LLP"})).await.unwrap().status(), 200);
    for body in [
        json!({"stripe_webhook_secrets": ["whsec_new"]}),
        json!({"stripe_api_key": "sk_x"}),
        json!({"stripe_connected": false}),
    ] {
        problem(patch(&write, body).await.unwrap(), 403, "forbidden").await;
    }
    problem(app.post_json(&write, "/v1/firm/api-keys", json!({})).await, 403, "forbidden").await;
    problem(app.post_json(&write, "/v1/firm/inbound-tokens", json!({})).await, 403, "forbidden").await;
    let sub = json!({"channel": "webhook", "url": "https://hooks.example/x"});
    problem(app.post_json(&write, "/v1/notifications/subscriptions", sub).await, 403, "forbidden").await;
    // Admin (the firm's first key): all of it.
    assert_eq!(patch(&firm.key, json!({"stripe_webhook_secrets": [SECRET, "whsec_new"]})).await.unwrap().status(), 200);
    let firm_view: Value = app.get(&read, "/v1/firm").await.json().await.unwrap();
    assert_eq!(firm_view["webhook_secret_count"], 2);
}

#[tokio::test]
async fn keys_are_listed_without_secrets_revoked_expired_and_audited() {
    let app = spawn_app().await;
    let firm = app.create_firm(&[SECRET]).await;
    let (id, key) = app.new_key(&firm.key, "write").await;
    assert_eq!(app.get(&key, "/v1/firm").await.status(), 200);
    let list: Value = app.get(&firm.key, "/v1/firm/api-keys").await.json().await.unwrap();
    let text = list.to_string();
    assert!(!text.contains(&key) && !text.contains(&firm.key), "a listing never shows a key");
    let items = list["data"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["id"], id.as_str(), "newest first");
    assert_eq!(items[0]["prefix"], &key[..8]);
    assert!(items[0]["last_used_at"].is_string(), "its use was recorded: {}", items[0]);
    assert_eq!(items[1]["scope"], "admin");
    // An expiry in the past is refused; a key past its expiry is refused like a revoked one.
    let r = app.post_json(&firm.key, "/v1/firm/api-keys", json!({"expires_at": "2000-01-01T00:00:00Z"})).await;
    problem(r, 422, "validation").await;
    let r = app.post_json(&firm.key, "/v1/firm/api-keys", json!({"expires_at": "2999-01-01T00:00:00Z"})).await;
    let expiring: Value = r.json().await.unwrap();
    let expiring_key = expiring["api_key"].as_str().unwrap();
    assert_eq!(app.get(expiring_key, "/v1/firm").await.status(), 200);
    sqlx::query("UPDATE api_keys SET expires_at = now() - interval '1 second' WHERE id = $1::uuid")
        .bind(expiring["id"].as_str().unwrap())
        .execute(&app.pool)
        .await
        .unwrap();
    problem(app.get(expiring_key, "/v1/firm").await, 401, "unauthorized").await;
    // Revoked: refused at once, shown with its revocation.
    let revoked: Value = app
        .http
        .delete(app.url(&format!("/v1/firm/api-keys/{id}")))
        .bearer_auth(&firm.key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(revoked["revoked_at"].is_string());
    problem(app.get(&key, "/v1/firm").await, 401, "unauthorized").await;
    // The last live admin key cannot be revoked (the firm would lock itself out).
    let first_id = items[1]["id"].as_str().unwrap();
    let r = app.http.delete(app.url(&format!("/v1/firm/api-keys/{first_id}"))).bearer_auth(&firm.key).send().await;
    problem(r.unwrap(), 409, "conflict").await;
    // Another firm's key id is not found.
    let other = app.create_firm(&[SECRET]).await;
    let r = app.http.delete(app.url(&format!("/v1/firm/api-keys/{first_id}"))).bearer_auth(&other.key).send().await;
    problem(r.unwrap(), 404, "not-found").await;
    // The audit log: every creation and the revocation, by whom.
    let log: Value = app.get(&firm.key, "/v1/firm/audit-log").await.json().await.unwrap();
    let actions: Vec<(&str, &str)> = log["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["action"].as_str().unwrap(), e["key_id"].as_str().unwrap()))
        .collect();
    assert_eq!(actions.first(), Some(&("revoked", id.as_str())), "{log}");
    assert_eq!(actions.iter().filter(|(a, _)| *a == "created").count(), 4, "first key, inbound token, two keys");
    let revocation = &log["data"][0];
    assert_eq!(revocation["actor_key_id"], first_id);
    assert!(!log.to_string().contains("afk_"), "the log never holds a key");
}

#[tokio::test]
async fn rotation_keeps_the_old_credential_for_the_overlap_only() {
    let app = spawn_app().await;
    let firm = app.create_firm(&[SECRET]).await;
    let (id, old) = app.new_key(&firm.key, "write").await;
    let rotated: Value = app
        .post_json(&firm.key, &format!("/v1/firm/api-keys/{id}/rotate"), json!({"overlap_hours": 24}))
        .await
        .json()
        .await
        .unwrap();
    let new = rotated["api_key"].as_str().unwrap();
    assert_eq!(rotated["key"]["scope"], "write");
    assert_eq!(app.get(new, "/v1/firm").await.status(), 200);
    assert_eq!(app.get(&old, "/v1/firm").await.status(), 200, "inside the overlap");
    sqlx::query("UPDATE api_keys SET expires_at = now() - interval '1 second' WHERE id = $1::uuid")
        .bind(&id)
        .execute(&app.pool)
        .await
        .unwrap();
    problem(app.get(&old, "/v1/firm").await, 401, "unauthorized").await;
    assert_eq!(app.get(new, "/v1/firm").await.status(), 200);

    // Inbound tokens: a new one ends the old one after its grace (here none).
    let raw = b"From: Ann <ann@client.test>\r\nTo: billing@acme.test\r\nSubject: Re: invoice\r\n\r\nPaid.\r\n".to_vec();
    let inbound = |token: String, raw: Vec<u8>| {
        app.http
            .post(app.url(&format!("/webhooks/email/inbound/{}", firm.id)))
            .bearer_auth(token)
            .header("content-type", "message/rfc822")
            .body(raw)
            .send()
    };
    let created: Value =
        app.post_json(&firm.key, "/v1/firm/inbound-tokens", json!({"overlap_hours": 0})).await.json().await.unwrap();
    let token = created["inbound_token"].as_str().unwrap().to_string();
    assert_eq!(created["replaces"].as_array().unwrap().len(), 1);
    problem(inbound(firm.inbound_token.clone(), raw.clone()).await.unwrap(), 401, "unauthorized").await;
    assert_eq!(inbound(token.clone(), raw.clone()).await.unwrap().status(), 202);
    // With a grace period the old token keeps working meanwhile.
    let again: Value = app.post_json(&firm.key, "/v1/firm/inbound-tokens", json!({})).await.json().await.unwrap();
    assert_eq!(again["replaces"][0]["id"], created["id"]);
    assert_eq!(inbound(token.clone(), raw).await.unwrap().status(), 202, "inside the default 24 h grace");
    let tokens: Value = app.get(&firm.key, "/v1/firm/inbound-tokens").await.json().await.unwrap();
    assert_eq!(tokens["data"].as_array().unwrap().len(), 3);
    assert!(!tokens.to_string().contains(&token), "a listing never shows a token");
}

#[tokio::test]
async fn an_idempotency_key_runs_once_under_concurrent_retries_and_is_bound_to_its_request() {
    let app = spawn_app().await;
    let firm = app.create_firm(&[SECRET]).await;
    let post = |key: &'static str, body: Value| {
        app.http.post(app.url("/v1/clients")).bearer_auth(&firm.key).header("Idempotency-Key", key).json(&body).send()
    };
    // 12 concurrent retries of one request: one client is created; the others are replayed or
    // told to retry (409 with Retry-After), never run twice.
    let tries = futures::future::join_all((0..12).map(|_| post("same", json!({"name": "Initech"})))).await;
    let mut created = 0;
    for r in tries {
        let r = r.unwrap();
        match r.status().as_u16() {
            201 => created += 1,
            409 => {
                assert_eq!(r.headers()["retry-after"], "1");
                problem(r, 409, "in-flight").await;
            }
            other => panic!("unexpected {other}"),
        }
    }
    assert!(created >= 1);
    let clients: i64 = sqlx::query_scalar("SELECT count(*) FROM clients").fetch_one(&app.pool).await.unwrap();
    assert_eq!(clients, 1, "exactly one client for one key");
    // The same key with another body: 422; on another path: 422.
    problem(post("same", json!({"name": "Globex"})).await.unwrap(), 422, "validation").await;
    let r = app
        .http
        .post(app.url("/v1/firm/api-keys"))
        .bearer_auth(&firm.key)
        .header("Idempotency-Key", "same")
        .json(&json!({"name": "Initech"}))
        .send()
        .await
        .unwrap();
    problem(r, 422, "validation").await;
    // A failed request releases its key.
    problem(post("fails", json!({"name": ""})).await.unwrap(), 422, "validation").await;
    assert_eq!(post("fails", json!({"name": "Hooli"})).await.unwrap().status(), 201);
    // After 24 hours the key is forgotten: the same request runs again.
    sqlx::query("UPDATE idempotency_keys SET created_at = created_at - interval '25 hours' WHERE key = 'same'")
        .execute(&app.pool)
        .await
        .unwrap();
    let r = post("same", json!({"name": "Initech"})).await.unwrap();
    assert_eq!(r.status(), 201);
    assert!(r.headers().get("idempotent-replayed").is_none());
}

#[tokio::test]
async fn a_replayed_response_never_holds_a_secret() {
    let app = spawn_app().await;
    let firm = app.create_firm(&[SECRET]).await;
    let create = || {
        app.http
            .post(app.url("/v1/firm/api-keys"))
            .bearer_auth(&firm.key)
            .header("Idempotency-Key", "key-1")
            .json(&json!({"name": "sync", "scope": "read"}))
            .send()
    };
    let first: Value = create().await.unwrap().json().await.unwrap();
    let secret = first["api_key"].as_str().unwrap().to_string();
    assert!(secret.starts_with("afk_"));
    let again = create().await.unwrap();
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    let again: Value = again.json().await.unwrap();
    assert_eq!(again["id"], first["id"], "the same key, not a second one");
    assert!(again["api_key"].is_null(), "the key is shown once: {again}");
    assert_eq!(again["key"]["prefix"], &secret[..8]);
    let stored: Vec<String> =
        sqlx::query_scalar("SELECT body::text FROM idempotency_keys").fetch_all(&app.pool).await.unwrap();
    assert!(stored.iter().all(|b| !b.contains(&secret) && !b.contains(&firm.key)), "{stored:?}");
    // Firm creation too (the operator's key space).
    let firm_body =
        json!({"name": "B", "sender_email": "b@b.test", "timezone": "UTC", "stripe_webhook_secrets": ["whsec_b"]});
    let make = || {
        app.http
            .post(app.url("/v1/firms"))
            .bearer_auth(support::ADMIN)
            .header("Idempotency-Key", "firm-b")
            .json(&firm_body)
            .send()
    };
    let made: Value = make().await.unwrap().json().await.unwrap();
    assert!(made["api_key"].as_str().unwrap().starts_with("afk_"));
    let replay: Value = make().await.unwrap().json().await.unwrap();
    assert_eq!(replay["firm"]["id"], made["firm"]["id"]);
    assert!(replay["api_key"].is_null() && replay["inbound_token"].is_null(), "{replay}");
    let stored: Vec<String> =
        sqlx::query_scalar("SELECT body::text FROM idempotency_keys").fetch_all(&app.pool).await.unwrap();
    let (key, token) = (made["api_key"].as_str().unwrap(), made["inbound_token"].as_str().unwrap());
    assert!(stored.iter().all(|b| !b.contains(key) && !b.contains(token)), "{stored:?}");
}

#[tokio::test]
async fn the_edge_checks_credentials_before_bodies_and_limits_rates() {
    let app = support::spawn_app_with(|c| {
        c.gateway.limits.per_key_per_sec = 2;
        c.gateway.limits.per_key_burst = 5;
        c.gateway.inbound_max_bytes = 1024 * 1024;
        c.gateway.limits.stripe_max_bytes = 64 * 1024;
    })
    .await;
    let firm = app.create_firm(&[SECRET]).await;
    let inbound = app.url(&format!("/webhooks/email/inbound/{}", firm.id));
    // A wrong token: 401 without the body being read (the 25 MiB are never sent in full; the
    // gateway may close the connection first, which the client sees as an error).
    let r = app.http.post(&inbound).bearer_auth("afi_wrong").body(vec![b'x'; 25 * 1024 * 1024]).send().await;
    if let Ok(r) = r {
        problem(r, 401, "unauthorized").await;
    }
    let r = app.http.post(&inbound).bearer_auth("afi_wrong").body("x").send().await.unwrap();
    problem(r, 401, "unauthorized").await;
    // The right token and a body over the limit: 413 (refused by its declared length, before
    // reading it).
    let r = app.http.post(&inbound).bearer_auth(&firm.inbound_token).body(vec![b'x'; 2 * 1024 * 1024]).send().await;
    if let Ok(r) = r {
        problem(r, 413, "too-large").await;
    }
    // Stripe: a missing, malformed or stale signature header is refused before the body; a
    // signed event over stripe_max_bytes is refused.
    let stripe = app.url(&format!("/webhooks/stripe/{}", firm.id));
    let r = app.http.post(&stripe).header("Stripe-Signature", "t=1,v1=00").body("{}").send().await.unwrap();
    problem(r, 400, "stale-timestamp").await;
    let now = chrono::Utc::now().timestamp();
    let big = vec![b' '; 128 * 1024];
    let sig = arflow_runtime::signature::stripe_signature_header(SECRET, &big, now);
    let r = app.http.post(&stripe).header("Stripe-Signature", sig).body(big).send().await.unwrap();
    problem(r, 413, "too-large").await;

    // A key over its rate: 429 with Retry-After (burst 5 at 2 a second); another key is unaffected.
    let mut statuses = Vec::new();
    for _ in 0..12 {
        let r = app.get(&firm.key, "/v1/firm").await;
        if r.status() == 429 {
            assert!(r.headers()["retry-after"].to_str().unwrap().parse::<u64>().unwrap() >= 1);
            problem(r, 429, "rate-limited").await;
            statuses.push(429);
        } else {
            statuses.push(r.status().as_u16());
        }
    }
    assert!(statuses.contains(&429), "{statuses:?}");
    assert_eq!(statuses[0], 200);
    let other = app.create_firm(&[SECRET]).await;
    assert_eq!(app.get(&other.key, "/v1/firm").await.status(), 200);
    // Stripe webhooks are never held back by a limit.
    for _ in 0..20 {
        let customer = arflow_testkit::stripe::customer("cus_1", "Initech", "ap@initech.test");
        let event = arflow_testkit::stripe::event("evt_limits", "customer.created", 1_700_000_000, customer);
        let r = app.deliver(firm.id, SECRET, &event).await;
        assert_ne!(r.status(), 429);
    }
}
