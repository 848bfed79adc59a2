//! Accounts at upstream identity providers, each linked to one user and keyed
//! by (provider, subject) as the provider keys its users.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Db, Result, StorageError, get_bool};
use crate::domain::User;

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Identity {
    pub provider: String,
    pub subject: String,
    pub user_id: String,
    pub email: Option<String>,
    pub email_verified: bool,
    /// JSON of the mapped profile claims from the last login.
    pub profile: String,
    pub created_at: i64,
    pub last_login_at: i64,
}

const COLUMNS: &str = "provider, subject, user_id, email, email_verified, profile, created_at, last_login_at";

fn from_row(r: &AnyRow) -> Result<Identity> {
    Ok(Identity {
        provider: r.try_get("provider")?,
        subject: r.try_get("subject")?,
        user_id: r.try_get("user_id")?,
        email: r.try_get("email")?,
        email_verified: get_bool(r, "email_verified")?,
        profile: r.try_get("profile")?,
        created_at: r.try_get("created_at")?,
        last_login_at: r.try_get("last_login_at")?,
    })
}

pub async fn find(db: &Db, provider: &str, subject: &str) -> Result<Option<Identity>> {
    let sql = sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM identities WHERE provider = $1 AND subject = $2"));
    let row = sqlx::query(sql).bind(provider).bind(subject).fetch_optional(db.pool()).await?;
    row.as_ref().map(from_row).transpose()
}

pub async fn for_user(db: &Db, user_id: &str) -> Result<Vec<Identity>> {
    let sql =
        sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM identities WHERE user_id = $1 ORDER BY provider, subject"));
    let rows = sqlx::query(sql).bind(user_id).fetch_all(db.pool()).await?;
    rows.iter().map(from_row).collect()
}

/// Links an identity to an existing user.
pub async fn insert(db: &Db, i: &Identity) -> Result<()> {
    insert_on(db.pool(), i).await
}

async fn insert_on<'e, E: sqlx::Executor<'e, Database = sqlx::Any>>(ex: E, i: &Identity) -> Result<()> {
    sqlx::query(
        "INSERT INTO identities (provider, subject, user_id, email, email_verified, profile, created_at, last_login_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(&i.provider)
    .bind(&i.subject)
    .bind(&i.user_id)
    .bind(&i.email)
    .bind(i.email_verified)
    .bind(&i.profile)
    .bind(i.created_at)
    .bind(i.last_login_at)
    .execute(ex)
    .await
    .map_err(|e| StorageError::on_unique(e, "this identity"))?;
    Ok(())
}

/// Creates a user and its first identity together: never a user without the
/// identity that signs them in.
pub async fn create_user_with(db: &Db, u: &User, i: &Identity) -> Result<()> {
    let mut tx = db.begin().await?;
    super::users::insert_on(&mut *tx, u).await?;
    insert_on(&mut *tx, i).await?;
    super::commit(tx).await?;
    Ok(())
}

/// Records a login: the upstream's current email and profile.
pub async fn touch(db: &Db, i: &Identity) -> Result<()> {
    sqlx::query(
        "UPDATE identities SET email = $3, email_verified = $4, profile = $5, last_login_at = $6
         WHERE provider = $1 AND subject = $2",
    )
    .bind(&i.provider)
    .bind(&i.subject)
    .bind(&i.email)
    .bind(i.email_verified)
    .bind(&i.profile)
    .bind(i.last_login_at)
    .execute(db.pool())
    .await?;
    Ok(())
}

/// Removes every identity of `user_id`, returning them (a reclaimed account).
pub async fn remove_all(db: &Db, user_id: &str) -> Result<Vec<Identity>> {
    let sql = sqlx::AssertSqlSafe(format!("DELETE FROM identities WHERE user_id = $1 RETURNING {COLUMNS}"));
    let rows = sqlx::query(sql).bind(user_id).fetch_all(db.pool()).await?;
    rows.iter().map(from_row).collect()
}

/// Removes identities of `user_id` at `provider` (one subject, or all there).
/// Returns how many were removed.
pub async fn remove(db: &Db, user_id: &str, provider: &str, subject: Option<&str>) -> Result<u64> {
    let q = match subject {
        Some(sub) => sqlx::query("DELETE FROM identities WHERE user_id = $1 AND provider = $2 AND subject = $3")
            .bind(user_id)
            .bind(provider)
            .bind(sub),
        None => sqlx::query("DELETE FROM identities WHERE user_id = $1 AND provider = $2").bind(user_id).bind(provider),
    };
    Ok(q.execute(db.pool()).await?.rows_affected())
}
