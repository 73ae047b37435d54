//! The inbox: every handled event id, recorded in the handler's own transaction,
//! so a redelivered message is recognised and skipped.
use sqlx::PgConnection;
use std::collections::HashSet;
use uuid::Uuid;

/// Records `ids` for `consumer`; returns the ones not seen before (the ones to process).
pub async fn record_new(conn: &mut PgConnection, consumer: &str, ids: &[Uuid]) -> Result<HashSet<Uuid>, sqlx::Error> {
    let rows: Vec<(Uuid,)> = sqlx::query_as(
        "INSERT INTO inbox (consumer, event_id) SELECT $1, unnest($2::uuid[]) \
         ON CONFLICT DO NOTHING RETURNING event_id",
    )
    .bind(consumer)
    .bind(ids)
    .fetch_all(conn)
    .await?;
    Ok(rows.into_iter().map(|(id,)| id).collect())
}
