//! The transactional outbox: events written in the same transaction as the state
//! that caused them, then published by the relay with their deterministic
//! `Nats-Msg-Id`. A crash between commit and publish loses nothing; a crash after
//! publish and before delete republishes the same id, which JetStream drops.
use arflow_bus::Bus;
use arflow_contracts::Envelope;
use arflow_runtime::Shutdown;
use bytes::Bytes;
use serde::Serialize;
use sqlx::{PgConnection, PgPool};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

#[derive(Debug, Clone)]
pub struct OutboxMessage {
    pub subject: String,
    pub msg_id: String,
    pub payload: serde_json::Value,
}

impl OutboxMessage {
    pub fn new<T: Serialize>(subject: String, msg_id: String, event: Envelope<T>) -> Result<Self, serde_json::Error> {
        Ok(OutboxMessage { subject, msg_id, payload: serde_json::to_value(event)? })
    }
}

/// Writes `messages` in the caller's transaction (in statements small enough not to stall,
/// see `chunk`).
pub async fn enqueue(conn: &mut PgConnection, messages: &[OutboxMessage]) -> Result<(), sqlx::Error> {
    for part in
        crate::chunk::size_chunks(messages, |m| crate::chunk::json_size(&m.payload) + m.subject.len() + m.msg_id.len())
    {
        enqueue_statement(conn, part).await?;
    }
    Ok(())
}

async fn enqueue_statement(conn: &mut PgConnection, messages: &[OutboxMessage]) -> Result<(), sqlx::Error> {
    let subjects: Vec<&str> = messages.iter().map(|m| m.subject.as_str()).collect();
    let ids: Vec<&str> = messages.iter().map(|m| m.msg_id.as_str()).collect();
    let payloads: Vec<&serde_json::Value> = messages.iter().map(|m| &m.payload).collect();
    sqlx::query(
        "INSERT INTO outbox (subject, msg_id, payload) \
         SELECT * FROM unnest($1::text[], $2::text[], $3::jsonb[])",
    )
    .bind(&subjects)
    .bind(&ids)
    .bind(&payloads)
    .execute(conn)
    .await?;
    Ok(())
}

/// The relay publishing one service's outbox.
#[derive(Clone)]
pub struct Outbox {
    pool: PgPool,
    bus: Bus,
    wake: Arc<Notify>,
}

const BATCH: i64 = 1_000;

impl Outbox {
    pub fn new(pool: PgPool, bus: Bus) -> Self {
        Outbox { pool, bus, wake: Arc::new(Notify::new()) }
    }

    /// Call after committing rows to the outbox so they go out at once.
    pub fn notify(&self) {
        self.wake.notify_one();
    }

    /// Publishes until `shutdown`, then flushes what is left once more.
    pub async fn run(self, shutdown: Shutdown) {
        loop {
            let published = match self.publish_batch().await {
                Ok(n) => n,
                Err(e) => {
                    tracing::warn!(error = %e, "outbox relay failed; retrying");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    0
                }
            };
            if shutdown.is_cancelled() {
                if published == 0 {
                    break;
                }
                continue;
            }
            if published < BATCH as usize {
                tokio::select! {
                    _ = self.wake.notified() => {}
                    _ = tokio::time::sleep(Duration::from_millis(250)) => {}
                    _ = shutdown.cancelled() => {}
                }
            }
        }
    }

    /// One pass: publish up to `BATCH` rows in order and delete the acknowledged ones.
    pub async fn publish_batch(&self) -> Result<usize, String> {
        let mut tx = self.pool.begin().await.map_err(|e| e.to_string())?;
        let rows: Vec<(i64, String, String, serde_json::Value)> = sqlx::query_as(
            "SELECT id, subject, msg_id, payload FROM outbox ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED",
        )
        .bind(BATCH)
        .fetch_all(&mut *tx)
        .await
        .map_err(|e| e.to_string())?;
        if rows.is_empty() {
            return Ok(0);
        }
        let publishes = rows.iter().map(|(_, subject, msg_id, payload)| async move {
            let bytes = serde_json::to_vec(payload).map_err(|e| e.to_string())?;
            self.bus.publish(subject, msg_id, Bytes::from(bytes)).await.map_err(|e| e.to_string())
        });
        let results = futures::future::join_all(publishes).await;
        let mut done = Vec::with_capacity(rows.len());
        let mut first_error = None;
        for ((id, ..), result) in rows.iter().zip(results) {
            match result {
                Ok(_) => done.push(*id),
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        sqlx::query("DELETE FROM outbox WHERE id = ANY($1)")
            .bind(&done)
            .execute(&mut *tx)
            .await
            .map_err(|e| e.to_string())?;
        tx.commit().await.map_err(|e| e.to_string())?;
        match first_error {
            Some(e) => Err(e),
            None => Ok(done.len()),
        }
    }
}
