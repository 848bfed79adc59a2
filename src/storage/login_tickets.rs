//! Embedded login's tickets: stored by hash, found while fresh, spent once by
//! one conditional DELETE (so two replicas cannot both spend one).

use sqlx::Row;

use super::{Db, Result};

#[derive(Debug, Clone)]
pub struct TicketRow {
    pub ticket_hash: String,
    pub client_id: String,
    pub user_id: String,
    pub co_id: String,
    pub verifier_hash: String,
    pub password_seen: String,
    pub created_at: i64,
    pub expires_at: i64,
}

pub async fn insert(db: &Db, t: &TicketRow) -> Result<()> {
    sqlx::query(
        "INSERT INTO login_tickets (ticket_hash, client_id, user_id, co_id, verifier_hash, password_seen, created_at,
            expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(&t.ticket_hash)
    .bind(&t.client_id)
    .bind(&t.user_id)
    .bind(&t.co_id)
    .bind(&t.verifier_hash)
    .bind(&t.password_seen)
    .bind(t.created_at)
    .bind(t.expires_at)
    .execute(db.pool())
    .await?;
    Ok(())
}

/// A ticket that has not expired (nor been spent).
pub async fn find(db: &Db, ticket_hash: &str, now: i64) -> Result<Option<TicketRow>> {
    let row = sqlx::query(
        "SELECT ticket_hash, client_id, user_id, co_id, verifier_hash, password_seen, created_at, expires_at
         FROM login_tickets WHERE ticket_hash = $1 AND expires_at > $2",
    )
    .bind(ticket_hash)
    .bind(now)
    .fetch_optional(db.pool())
    .await?;
    row.map(|r| {
        Ok(TicketRow {
            ticket_hash: r.try_get("ticket_hash")?,
            client_id: r.try_get("client_id")?,
            user_id: r.try_get("user_id")?,
            co_id: r.try_get("co_id")?,
            verifier_hash: r.try_get("verifier_hash")?,
            password_seen: r.try_get("password_seen")?,
            created_at: r.try_get("created_at")?,
            expires_at: r.try_get("expires_at")?,
        })
    })
    .transpose()
}

/// Spends the ticket; false when it was spent (or expired) before.
pub async fn take(db: &Db, ticket_hash: &str, now: i64) -> Result<bool> {
    let res = sqlx::query("DELETE FROM login_tickets WHERE ticket_hash = $1 AND expires_at > $2")
        .bind(ticket_hash)
        .bind(now)
        .execute(db.pool())
        .await?;
    Ok(res.rows_affected() == 1)
}
