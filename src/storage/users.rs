//! User rows. Emails are unique case-insensitively through `email_normalized`.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Db, Result, StorageError, get_bool};
use crate::domain::{User, normalize_email};

const COLUMNS: &str = "user_id, email, email_verified, name, picture, password_hash, disabled, created_at, updated_at";

fn from_row(r: &AnyRow) -> Result<User> {
    Ok(User {
        user_id: r.try_get("user_id")?,
        email: r.try_get("email")?,
        email_verified: get_bool(r, "email_verified")?,
        name: r.try_get("name")?,
        picture: r.try_get("picture")?,
        password_hash: r.try_get("password_hash")?,
        disabled: get_bool(r, "disabled")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

type Query<'q> = sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>;

/// Binds $1..$8, shared by INSERT and UPDATE (same placeholder numbering).
fn bind_fields<'q>(q: Query<'q>, u: &'q User) -> Query<'q> {
    q.bind(&u.user_id)
        .bind(&u.email)
        .bind(u.email.as_deref().map(normalize_email))
        .bind(u.email_verified)
        .bind(&u.name)
        .bind(&u.password_hash)
        .bind(u.disabled)
        .bind(&u.picture)
}

pub async fn insert(db: &Db, u: &User) -> Result<()> {
    insert_on(db.pool(), u).await
}

pub(super) async fn insert_on<'e, E: sqlx::Executor<'e, Database = sqlx::Any>>(ex: E, u: &User) -> Result<()> {
    let q = sqlx::query(
        "INSERT INTO users (user_id, email, email_normalized, email_verified, name, password_hash, disabled,
            picture, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    );
    bind_fields(q, u)
        .bind(u.created_at)
        .bind(u.updated_at)
        .execute(ex)
        .await
        .map_err(|e| StorageError::on_unique(e, "a user with this email"))?;
    Ok(())
}

/// Replaces every mutable field of an existing user.
pub async fn update(db: &Db, u: &User) -> Result<()> {
    let q = sqlx::query(
        "UPDATE users SET email = $2, email_normalized = $3, email_verified = $4, name = $5,
            password_hash = $6, disabled = $7, picture = $8, updated_at = $9
         WHERE user_id = $1",
    );
    let res = bind_fields(q, u)
        .bind(u.updated_at)
        .execute(db.pool())
        .await
        .map_err(|e| StorageError::on_unique(e, "a user with this email"))?;
    if res.rows_affected() == 0 { Err(StorageError::NotFound) } else { Ok(()) }
}

/// Deletes `user_id` if it is still an unfinished sign-up: an unverified
/// address, no password, no identity, no session, no role or group (an
/// administrator's passwordless user keeps its roles, so it stays).
pub async fn delete_unfinished(db: &Db, user_id: &str) -> Result<bool> {
    let res = sqlx::query(
        "DELETE FROM users WHERE user_id = $1 AND email_verified = FALSE AND password_hash IS NULL
           AND NOT EXISTS (SELECT 1 FROM identities WHERE user_id = $1)
           AND NOT EXISTS (SELECT 1 FROM sessions WHERE user_id = $1)
           AND NOT EXISTS (SELECT 1 FROM user_roles WHERE user_id = $1)
           AND NOT EXISTS (SELECT 1 FROM group_members WHERE user_id = $1)",
    )
    .bind(user_id)
    .execute(db.pool())
    .await?;
    Ok(res.rows_affected() > 0)
}

/// Replaces the password hash `old` by `new`; false when the account's hash
/// is no longer `old` (changed meanwhile).
pub async fn replace_password_hash(db: &Db, user_id: &str, old: &str, new: &str, now: i64) -> Result<bool> {
    let res =
        sqlx::query("UPDATE users SET password_hash = $3, updated_at = $4 WHERE user_id = $1 AND password_hash = $2")
            .bind(user_id)
            .bind(old)
            .bind(new)
            .bind(now)
            .execute(db.pool())
            .await?;
    Ok(res.rows_affected() > 0)
}

/// Takes an unverified address off `user_id` (someone else proved it);
/// false when the account holds it verified or not at all.
pub async fn release_email(db: &Db, user_id: &str, email: &str, now: i64) -> Result<bool> {
    let res = sqlx::query(
        "UPDATE users SET email = NULL, email_normalized = NULL, email_verified = FALSE, updated_at = $3
         WHERE user_id = $1 AND email_normalized = $2 AND email_verified = FALSE",
    )
    .bind(user_id)
    .bind(normalize_email(email))
    .bind(now)
    .execute(db.pool())
    .await?;
    Ok(res.rows_affected() > 0)
}

pub async fn find_by_id(db: &Db, user_id: &str) -> Result<Option<User>> {
    let sql = sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM users WHERE user_id = $1"));
    let row = sqlx::query(sql).bind(user_id).fetch_optional(db.pool()).await?;
    row.as_ref().map(from_row).transpose()
}

pub async fn find_by_email(db: &Db, email: &str) -> Result<Option<User>> {
    let sql = sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM users WHERE email_normalized = $1"));
    let row = sqlx::query(sql).bind(normalize_email(email)).fetch_optional(db.pool()).await?;
    row.as_ref().map(from_row).transpose()
}

/// Users ordered by email, at most `limit` after `offset`.
pub async fn list(db: &Db, limit: i64, offset: i64) -> Result<Vec<User>> {
    let sql = sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM users ORDER BY email_normalized IS NULL, email_normalized, user_id LIMIT $1 OFFSET $2"
    ));
    let rows = sqlx::query(sql).bind(limit).bind(offset).fetch_all(db.pool()).await?;
    rows.iter().map(from_row).collect()
}

pub async fn delete(db: &Db, user_id: &str) -> Result<()> {
    let res = sqlx::query("DELETE FROM users WHERE user_id = $1").bind(user_id).execute(db.pool()).await?;
    if res.rows_affected() == 0 { Err(StorageError::NotFound) } else { Ok(()) }
}

/// Which users a page holds; empty strings mean "any".
#[derive(Debug, Default)]
pub struct Filter {
    pub email: String,
    pub role: String,
    pub group: String,
    pub provider: String,
    /// An id, or part of an address or a name (any case): the console's
    /// search box. Matching a part reads every row; the other filters are
    /// indexed.
    pub text: String,
}

/// `s` matched literally by `LIKE … ESCAPE '!'`.
fn like_escape(s: &str) -> String {
    s.replace('!', "!!").replace('%', "!%").replace('_', "!_")
}

/// Users by id after `after` (exclusive), at most `limit`, matching `f`.
pub async fn page(db: &Db, f: &Filter, after: &str, limit: i64) -> Result<Vec<User>> {
    let sql = sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM users u
         WHERE ($1 = '' OR u.user_id > $1)
           AND ($2 = '' OR u.email_normalized = $2)
           AND ($3 = '' OR u.user_id IN (SELECT user_id FROM user_roles WHERE role = $3
                UNION SELECT gm.user_id FROM group_members gm
                JOIN group_roles gr ON gr.group_name = gm.group_name WHERE gr.role = $3))
           AND ($4 = '' OR u.user_id IN (SELECT user_id FROM group_members WHERE group_name = $4))
           AND ($5 = '' OR u.user_id IN (SELECT user_id FROM identities WHERE provider = $5))
           AND ($7 = '' OR u.user_id = $7 OR u.email_normalized LIKE $8 ESCAPE '!' OR LOWER(u.name) LIKE $8 ESCAPE '!')
         ORDER BY u.user_id LIMIT $6"
    ));
    let rows = sqlx::query(sql)
        .bind(after)
        .bind(if f.email.is_empty() { String::new() } else { normalize_email(&f.email) })
        .bind(&f.role)
        .bind(&f.group)
        .bind(&f.provider)
        .bind(limit)
        .bind(f.text.trim())
        .bind(format!("%{}%", like_escape(&f.text.trim().to_lowercase())))
        .fetch_all(db.pool())
        .await?;
    rows.iter().map(from_row).collect()
}
