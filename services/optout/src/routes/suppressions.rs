//! The firm's suppression list as CSV: export every opted-out contact and channel; import a
//! list (by contact id or email) as opt-outs with source `csv_import`. A row that matches no
//! contact is reported back, never dropped silently.
use crate::handlers::Context;
use crate::ledger::{self, Action, Change, Source};
use crate::store::{self, ContactRow, parse_channel};
use arflow_core::Channel;
use arflow_service::api::{ApiError, Caller};
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use std::collections::HashMap;
use std::sync::Arc;
use uuid::Uuid;

/// Opt-outs recorded per transaction by an import.
const RECORD_CHUNK: usize = 1_000;

pub const COLUMNS: [&str; 8] =
    ["email", "phone", "contact_id", "client_id", "channel", "source", "evidence", "opted_out_at"];

/// `GET /v1/consent/suppressions.csv`
#[utoipa::path(get, path = "/v1/consent/suppressions.csv", tag = "consent",
    responses((status = 200, content_type = "text/csv", body = String,
        description = "header `email,phone,contact_id,client_id,channel,source,evidence,opted_out_at`, one row per opted-out contact and channel")),
    security(("api_key" = [])))]
pub async fn export(State(ctx): State<Arc<Context>>, caller: Caller) -> Result<Response, ApiError> {
    let mut conn = ctx.pool.acquire().await?;
    let rows = store::suppressions(&mut conn, caller.firm_id).await?;
    let mut out = csv::Writer::from_writer(Vec::new());
    let csv_err = |e: csv::Error| ApiError::internal(format!("csv: {e}"));
    out.write_record(COLUMNS).map_err(csv_err)?;
    for r in &rows {
        out.write_record([
            r.email.as_deref().unwrap_or(""),
            r.phone.as_deref().unwrap_or(""),
            &r.contact_id.to_string(),
            &r.client_id.to_string(),
            &r.channel,
            &r.source,
            &r.evidence,
            &r.opted_out_at.to_rfc3339(),
        ])
        .map_err(csv_err)?;
    }
    let bytes = out.into_inner().map_err(|e| ApiError::internal(format!("csv: {e}")))?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (header::CONTENT_DISPOSITION, "attachment; filename=\"suppressions.csv\""),
        ],
        bytes,
    )
        .into_response())
}

#[derive(Debug, Serialize, PartialEq, utoipa::ToSchema)]
pub struct UnknownRow {
    pub line: u64,
    pub contact_id: Option<String>,
    pub email: Option<String>,
}

#[derive(Debug, Serialize, PartialEq, utoipa::ToSchema)]
pub struct InvalidRow {
    pub line: u64,
    pub error: String,
}

#[derive(Debug, Serialize, Default, utoipa::ToSchema)]
pub struct ImportReport {
    /// Rows that opted out at least one contact channel not opted out before.
    pub imported: u64,
    /// Rows whose contacts were already opted out (recorded in the ledger all the same).
    pub already_opted_out: u64,
    pub unknown: Vec<UnknownRow>,
    pub invalid: Vec<InvalidRow>,
}

/// One parsed row: who it names and for which channel.
struct Row {
    line: u64,
    target: Target,
    channel: Option<Channel>,
    evidence: String,
}

enum Target {
    Contact(Uuid, String),
    Email(String),
}

/// Parses the CSV; rows that cannot be read go to `invalid`.
fn parse(body: &[u8], max_rows: usize, report: &mut ImportReport) -> Result<Vec<Row>, ApiError> {
    let mut reader = csv::ReaderBuilder::new().flexible(true).trim(csv::Trim::All).from_reader(body);
    let headers = reader.headers().map_err(|e| ApiError::Validation(format!("CSV header: {e}")))?.clone();
    let col = |name: &str| headers.iter().position(|h| h.eq_ignore_ascii_case(name));
    let (id_col, email_col) = (col("contact_id"), col("email"));
    if id_col.is_none() && email_col.is_none() {
        return Err(ApiError::Validation("CSV header: needs a contact_id or an email column".into()));
    }
    let channel_col = col("channel");
    let evidence_col = col("evidence").or_else(|| col("reason"));
    let mut rows = Vec::new();
    for (n, record) in reader.records().enumerate() {
        if n >= max_rows {
            return Err(ApiError::Validation(format!("at most {max_rows} rows per import")));
        }
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                let line = e.position().map(|p| p.line()).unwrap_or(n as u64 + 2);
                report.invalid.push(InvalidRow { line, error: e.to_string() });
                continue;
            }
        };
        let line = record.position().map(|p| p.line()).unwrap_or(n as u64 + 2);
        let field = |c: Option<usize>| c.and_then(|i| record.get(i)).filter(|v| !v.is_empty());
        if record.iter().all(str::is_empty) {
            continue;
        }
        let invalid = |error: String| InvalidRow { line, error };
        let channel = match field(channel_col) {
            None | Some("all") => None,
            Some(c) => match parse_channel(c) {
                Some(c) => Some(c),
                None => {
                    report.invalid.push(invalid(format!("channel {c:?}: email, voice, sms, all or empty")));
                    continue;
                }
            },
        };
        let target = match (field(id_col), field(email_col)) {
            (Some(id), _) => match Uuid::parse_str(id) {
                Ok(uuid) => Target::Contact(uuid, id.to_string()),
                Err(_) => {
                    report.invalid.push(invalid(format!("contact_id {id:?} is not a UUID")));
                    continue;
                }
            },
            (None, Some(email)) if email.contains('@') => Target::Email(email.to_lowercase()),
            (None, Some(email)) => {
                report.invalid.push(invalid(format!("email {email:?} is not an address")));
                continue;
            }
            (None, None) => {
                report.invalid.push(invalid("a row needs a contact_id or an email".into()));
                continue;
            }
        };
        let evidence = field(evidence_col).unwrap_or("").to_string();
        rows.push(Row { line, target, channel, evidence });
    }
    Ok(rows)
}

/// `POST /v1/consent/suppressions.csv` (a `text/csv` body): every known row becomes an opt-out.
#[utoipa::path(post, path = "/v1/consent/suppressions.csv", tag = "consent",
    request_body(content = String, content_type = "text/csv",
        description = "a `contact_id` or an `email` column; optional `channel` (`email`, `voice`, `sms`, `all`) and `evidence` (or `reason`)"),
    params(("X-Arflow-Actor" = Option<String>, Header, description = "the firm user acting")),
    responses((status = 200, body = ImportReport), (status = 422, body = arflow_service::api::ProblemBody)),
    security(("api_key" = [])))]
pub async fn import(
    State(ctx): State<Arc<Context>>,
    caller: Caller,
    body: Bytes,
) -> Result<Json<ImportReport>, ApiError> {
    let mut report = ImportReport::default();
    let rows = parse(&body, ctx.settings.import_max_rows, &mut report)?;
    let mut conn = ctx.pool.acquire().await?;
    let ids: Vec<Uuid> =
        rows.iter().filter_map(|r| if let Target::Contact(id, _) = &r.target { Some(*id) } else { None }).collect();
    let emails: Vec<String> =
        rows.iter().filter_map(|r| if let Target::Email(e) = &r.target { Some(e.clone()) } else { None }).collect();
    let by_id = store::contacts_by_id(&mut conn, &ids).await?;
    let mut by_email: HashMap<String, Vec<ContactRow>> = HashMap::new();
    for c in store::contacts_by_email(&mut conn, caller.firm_id, &emails).await? {
        if let Some(e) = &c.email {
            by_email.entry(e.trim().to_lowercase()).or_default().push(c);
        }
    }
    drop(conn);

    // Each row's changes (an address shared by several contacts opts out all of them).
    let mut per_row: Vec<(u64, usize)> = Vec::new();
    let mut changes: Vec<Change> = Vec::new();
    for row in &rows {
        let contacts: Vec<&ContactRow> = match &row.target {
            Target::Contact(id, _) => by_id.get(id).filter(|c| c.firm_id == caller.firm_id).into_iter().collect(),
            Target::Email(e) => by_email.get(e).map(|v| v.iter().collect()).unwrap_or_default(),
        };
        if contacts.is_empty() {
            let (contact_id, email) = match &row.target {
                Target::Contact(_, raw) => (Some(raw.clone()), None),
                Target::Email(e) => (None, Some(e.clone())),
            };
            report.unknown.push(UnknownRow { line: row.line, contact_id, email });
            continue;
        }
        let evidence = if row.evidence.is_empty() {
            format!("suppression list imported by {} (line {})", caller.actor, row.line)
        } else {
            format!("{} (suppression list imported by {}, line {})", row.evidence, caller.actor, row.line)
        };
        per_row.push((row.line, contacts.len()));
        changes.extend(contacts.into_iter().map(|c| Change {
            firm_id: caller.firm_id,
            contact_id: c.contact_id,
            client_id: c.client_id,
            channel: row.channel,
            action: Action::OptOut,
            source: Source::CsvImport,
            actor: caller.actor.clone(),
            evidence: evidence.clone(),
            cause: None,
        }));
    }
    let refs: Vec<&Change> = changes.iter().collect();
    let now = ctx.clock.now();
    let concurrency = ctx.settings.import_concurrency;
    ledger::hold_all(&ctx.holds, &refs, now, concurrency, false).await?;
    // One transaction per chunk: each takes a lock per contact, and one transaction may hold
    // only so many (`max_locks_per_transaction`); every hold is already written.
    let mut recorded = Vec::with_capacity(refs.len());
    for chunk in refs.chunks(RECORD_CHUNK) {
        let mut tx = ctx.pool.begin().await?;
        recorded.extend(ledger::record_opt_outs(&mut tx, &ctx.holds, chunk, now, concurrency).await?);
        tx.commit().await?;
        ctx.outbox.notify();
    }
    let mut results = recorded.iter();
    for (_, n) in per_row {
        let changed = results.by_ref().take(n).fold(false, |any, r| any | r.event.is_some());
        if changed {
            report.imported += 1;
        } else {
            report.already_opted_out += 1;
        }
    }
    tracing::info!(
        firm_id = %caller.firm_id, imported = report.imported, already = report.already_opted_out,
        unknown = report.unknown.len(), invalid = report.invalid.len(), "suppression list imported"
    );
    Ok(Json(report))
}
