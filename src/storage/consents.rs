//! Remembered consent: the scopes a user granted a client.

use super::{Db, Result, get_list, to_json_list};

/// The granted scopes and when they were last granted (empty and 0 when never).
pub async fn find(db: &Db, user_id: &str, client_id: &str) -> Result<(Vec<String>, i64)> {
    let row = sqlx::query("SELECT scopes, updated_at FROM consents WHERE user_id = $1 AND client_id = $2")
        .bind(user_id)
        .bind(client_id)
        .fetch_optional(db.pool())
        .await?;
    match row {
        Some(r) => Ok((get_list(&r, "scopes")?, sqlx::Row::try_get(&r, "updated_at")?)),
        None => Ok((Vec::new(), 0)),
    }
}

pub async fn upsert(db: &Db, user_id: &str, client_id: &str, scopes: &[String], now: i64) -> Result<()> {
    sqlx::query(
        "INSERT INTO consents (user_id, client_id, scopes, updated_at) VALUES ($1, $2, $3, $4)
         ON CONFLICT (user_id, client_id) DO UPDATE SET scopes = excluded.scopes, updated_at = excluded.updated_at",
    )
    .bind(user_id)
    .bind(client_id)
    .bind(to_json_list(scopes))
    .bind(now)
    .execute(db.pool())
    .await?;
    Ok(())
}

/// Every client a user consented to: (client_id, scopes, when), newest first.
pub async fn list_for_user(db: &Db, user_id: &str) -> Result<Vec<(String, Vec<String>, i64)>> {
    let rows =
        sqlx::query("SELECT client_id, scopes, updated_at FROM consents WHERE user_id = $1 ORDER BY updated_at DESC")
            .bind(user_id)
            .fetch_all(db.pool())
            .await?;
    rows.iter()
        .map(|r| {
            Ok((sqlx::Row::try_get(r, "client_id")?, get_list(r, "scopes")?, sqlx::Row::try_get(r, "updated_at")?))
        })
        .collect()
}

/// Withdraws a consent; true when there was one.
pub async fn delete(db: &Db, user_id: &str, client_id: &str) -> Result<bool> {
    let n = sqlx::query("DELETE FROM consents WHERE user_id = $1 AND client_id = $2")
        .bind(user_id)
        .bind(client_id)
        .execute(db.pool())
        .await?
        .rows_affected();
    Ok(n > 0)
}

/// Withdraws every consent of a user; how many there were.
pub async fn delete_for_user(db: &Db, user_id: &str) -> Result<u64> {
    let res = sqlx::query("DELETE FROM consents WHERE user_id = $1").bind(user_id).execute(db.pool()).await?;
    Ok(res.rows_affected())
}
