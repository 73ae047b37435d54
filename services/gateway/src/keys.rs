//! A firm's API keys and inbound tokens (stored as SHA-256, shown once), what each may do, their
//! expiry, rotation with an overlap, revocation, and the audit log of all of it.
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

/// The kind of credential: `api` authenticates the REST API, `inbound` only posts inbound mail.
pub const KIND_API: &str = "api";
pub const KIND_INBOUND: &str = "inbound";

/// What an API key may do. `read`: GET only. `write`: every record and action. `admin`: also
/// the firm's Stripe secrets, its keys and tokens, and notification endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Access {
    Read,
    Write,
    Admin,
}

impl Access {
    pub fn as_str(self) -> &'static str {
        match self {
            Access::Read => "read",
            Access::Write => "write",
            Access::Admin => "admin",
        }
    }

    fn parse(s: &str) -> Access {
        match s {
            "read" => Access::Read,
            "write" => Access::Write,
            // The column's CHECK allows nothing else; an unknown value grants the least.
            "admin" => Access::Admin,
            _ => Access::Read,
        }
    }
}

/// A live credential found by its hash.
#[derive(Debug, Clone, Copy)]
pub struct Credential {
    pub key_id: Uuid,
    pub firm_id: Uuid,
    pub access: Access,
}

/// A key as the firm sees it: never the key, only its first characters.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct KeyView {
    pub id: Uuid,
    /// `api` or `inbound`.
    pub kind: String,
    /// The key's first 8 characters (`afk_1a2b`), to recognise it.
    pub prefix: String,
    pub name: String,
    /// What an API key may do; inbound tokens post inbound mail only.
    pub scope: Access,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
    /// The key that replaced this one in a rotation.
    pub replaced_by: Option<Uuid>,
}

#[derive(sqlx::FromRow)]
struct KeyRow {
    id: Uuid,
    scope: String,
    prefix: String,
    name: String,
    access: String,
    created_at: DateTime<Utc>,
    last_used_at: Option<DateTime<Utc>>,
    expires_at: Option<DateTime<Utc>>,
    revoked_at: Option<DateTime<Utc>>,
    replaced_by: Option<Uuid>,
}

impl From<KeyRow> for KeyView {
    fn from(r: KeyRow) -> Self {
        KeyView {
            id: r.id,
            kind: r.scope,
            prefix: r.prefix,
            name: r.name,
            scope: Access::parse(&r.access),
            created_at: r.created_at,
            last_used_at: r.last_used_at,
            expires_at: r.expires_at,
            revoked_at: r.revoked_at,
            replaced_by: r.replaced_by,
        }
    }
}

/// The columns of a [`KeyRow`] (a macro, so that queries stay `&'static str`).
macro_rules! key_columns {
    () => {
        "id, scope, prefix, name, access, created_at, last_used_at, expires_at, revoked_at, replaced_by"
    };
}

/// A new credential row.
pub struct NewKey<'a> {
    pub firm_id: Uuid,
    pub kind: &'a str,
    pub hash: &'a str,
    pub prefix: &'a str,
    pub name: &'a str,
    pub access: Access,
    pub expires_at: Option<DateTime<Utc>>,
}

pub async fn insert(conn: &mut PgConnection, k: &NewKey<'_>, now: DateTime<Utc>) -> Result<Uuid, sqlx::Error> {
    let id = arflow_core::new_id();
    sqlx::query(
        "INSERT INTO api_keys (id, firm_id, key_hash, prefix, scope, name, access, expires_at, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(id)
    .bind(k.firm_id)
    .bind(k.hash)
    .bind(k.prefix)
    .bind(k.kind)
    .bind(k.name)
    .bind(k.access.as_str())
    .bind(k.expires_at)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(id)
}

/// The live credential of `kind` with this hash: not revoked, not expired at `now`.
pub async fn lookup(
    pool: &PgPool,
    hash: &str,
    kind: &str,
    now: DateTime<Utc>,
) -> Result<Option<(Credential, Option<DateTime<Utc>>)>, sqlx::Error> {
    let row: Option<(Uuid, Uuid, String, Option<DateTime<Utc>>)> = sqlx::query_as(
        "SELECT id, firm_id, access, last_used_at FROM api_keys WHERE key_hash = $1 AND scope = $2 \
         AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > $3)",
    )
    .bind(hash)
    .bind(kind)
    .bind(now)
    .fetch_optional(pool)
    .await?;
    Ok(row.map(|(key_id, firm_id, access, last_used)| {
        (Credential { key_id, firm_id, access: Access::parse(&access) }, last_used)
    }))
}

/// Records that a key was used (at most about once a minute per key: it is for people, and a
/// write per request would cost every request a commit).
pub async fn touch(pool: &PgPool, key_id: Uuid, now: DateTime<Utc>) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE api_keys SET last_used_at = $2 WHERE id = $1 \
         AND (last_used_at IS NULL OR last_used_at < $2 - interval '1 minute')",
    )
    .bind(key_id)
    .bind(now)
    .execute(pool)
    .await?;
    Ok(())
}

/// A page of the firm's credentials of `kind`, newest first.
pub async fn list(
    pool: &PgPool,
    firm_id: Uuid,
    kind: &str,
    before: Option<Uuid>,
    limit: i64,
) -> Result<Vec<KeyView>, sqlx::Error> {
    let rows: Vec<KeyRow> = sqlx::query_as(concat!(
        "SELECT ",
        key_columns!(),
        " FROM api_keys WHERE firm_id = $1 AND scope = $2 AND ($3::uuid IS NULL OR id < $3) ORDER BY id DESC LIMIT $4"
    ))
    .bind(firm_id)
    .bind(kind)
    .bind(before)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(KeyView::from).collect())
}

/// One of the firm's credentials of `kind`, locked for a change.
pub async fn get_for_update(
    conn: &mut PgConnection,
    firm_id: Uuid,
    kind: &str,
    id: Uuid,
) -> Result<Option<KeyView>, sqlx::Error> {
    let row: Option<KeyRow> = sqlx::query_as(concat!(
        "SELECT ",
        key_columns!(),
        " FROM api_keys WHERE firm_id = $1 AND scope = $2 AND id = $3 FOR UPDATE"
    ))
    .bind(firm_id)
    .bind(kind)
    .bind(id)
    .fetch_optional(conn)
    .await?;
    Ok(row.map(KeyView::from))
}

pub async fn revoke(conn: &mut PgConnection, id: Uuid, now: DateTime<Utc>) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE api_keys SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL")
        .bind(id)
        .bind(now)
        .execute(conn)
        .await?;
    Ok(())
}

/// Ends a key at `until` at the latest (an earlier expiry stays), naming its replacement.
pub async fn expire_by(
    conn: &mut PgConnection,
    id: Uuid,
    until: DateTime<Utc>,
    replaced_by: Option<Uuid>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE api_keys SET expires_at = LEAST(COALESCE(expires_at, $2), $2), \
         replaced_by = COALESCE($3, replaced_by) WHERE id = $1",
    )
    .bind(id)
    .bind(until)
    .bind(replaced_by)
    .execute(conn)
    .await?;
    Ok(())
}

/// The firm's other live credentials of `kind` (for rotating every inbound token at once).
pub async fn live_ids(
    conn: &mut PgConnection,
    firm_id: Uuid,
    kind: &str,
    except: Uuid,
    now: DateTime<Utc>,
) -> Result<Vec<Uuid>, sqlx::Error> {
    let rows: Vec<(Uuid,)> = sqlx::query_as(
        "SELECT id FROM api_keys WHERE firm_id = $1 AND scope = $2 AND id <> $3 AND revoked_at IS NULL \
         AND (expires_at IS NULL OR expires_at > $4) FOR UPDATE",
    )
    .bind(firm_id)
    .bind(kind)
    .bind(except)
    .bind(now)
    .fetch_all(conn)
    .await?;
    Ok(rows.into_iter().map(|(id,)| id).collect())
}

/// Live admin keys of the firm other than `except` that outlive `at` (a firm must keep one).
pub async fn other_admins(
    conn: &mut PgConnection,
    firm_id: Uuid,
    except: Uuid,
    at: DateTime<Utc>,
) -> Result<i64, sqlx::Error> {
    let (n,): (i64,) = sqlx::query_as(
        "SELECT count(*) FROM api_keys WHERE firm_id = $1 AND scope = 'api' AND access = 'admin' AND id <> $2 \
         AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > $3)",
    )
    .bind(firm_id)
    .bind(except)
    .bind(at)
    .fetch_one(conn)
    .await?;
    Ok(n)
}

/// One entry of the audit log.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct KeyEvent {
    pub id: Uuid,
    pub key_id: Uuid,
    /// `created`, `revoked`, `rotated` or `expiry_set`.
    pub action: String,
    /// The key that did it; `null`: the operator (the firm's first key).
    pub actor_key_id: Option<Uuid>,
    #[schema(value_type = Object)]
    pub detail: serde_json::Value,
    pub at: DateTime<Utc>,
}

pub async fn record_event(
    conn: &mut PgConnection,
    firm_id: Uuid,
    key_id: Uuid,
    action: &str,
    actor: Option<Uuid>,
    detail: serde_json::Value,
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO key_events (id, firm_id, key_id, action, actor_key_id, detail, at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(arflow_core::new_id())
    .bind(firm_id)
    .bind(key_id)
    .bind(action)
    .bind(actor)
    .bind(detail)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

/// A page of the firm's audit log, newest first.
pub async fn events(
    pool: &PgPool,
    firm_id: Uuid,
    before: Option<Uuid>,
    limit: i64,
) -> Result<Vec<KeyEvent>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, key_id, action, actor_key_id, detail, at FROM key_events \
         WHERE firm_id = $1 AND ($2::uuid IS NULL OR id < $2) ORDER BY id DESC LIMIT $3",
    )
    .bind(firm_id)
    .bind(before)
    .bind(limit)
    .fetch_all(pool)
    .await
}
