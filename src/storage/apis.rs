//! APIs (resource servers) and the permissions each client may ask for on them.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Db, Result, StorageError, get_list, to_json_list};
use crate::domain::Api;

const COLUMNS: &str = "identifier, name, permissions, token_ttl_secs, alg, created_at, updated_at";

fn from_row(r: &AnyRow) -> Result<Api> {
    let alg: Option<String> = r.try_get("alg")?;
    Ok(Api {
        identifier: r.try_get("identifier")?,
        name: r.try_get("name")?,
        permissions: get_list(r, "permissions")?,
        token_ttl_secs: r.try_get::<Option<i64>, _>("token_ttl_secs")?.map(|v| v.max(0) as u64),
        alg: alg.map(|a| a.parse().map_err(StorageError::Corrupt)).transpose()?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

pub async fn insert(db: &Db, a: &Api) -> Result<()> {
    sqlx::query(
        "INSERT INTO apis (identifier, name, permissions, token_ttl_secs, alg, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(&a.identifier)
    .bind(&a.name)
    .bind(to_json_list(&a.permissions))
    .bind(a.token_ttl_secs.map(|v| v as i64))
    .bind(a.alg.map(|a| a.as_str()))
    .bind(a.created_at)
    .bind(a.updated_at)
    .execute(db.pool())
    .await
    .map_err(|e| StorageError::on_unique(e, "an API with this identifier"))?;
    Ok(())
}

/// Replaces the API's fields; permissions it no longer defines leave every
/// role and client grant in the same transaction.
pub async fn update(db: &Db, a: &Api) -> Result<()> {
    let mut tx = db.begin().await?;
    let res = sqlx::query(
        "UPDATE apis SET name = $2, permissions = $3, token_ttl_secs = $4, alg = $5, updated_at = $6
         WHERE identifier = $1",
    )
    .bind(&a.identifier)
    .bind(&a.name)
    .bind(to_json_list(&a.permissions))
    .bind(a.token_ttl_secs.map(|v| v as i64))
    .bind(a.alg.map(|a| a.as_str()))
    .bind(a.updated_at)
    .execute(&mut *tx)
    .await?;
    if res.rows_affected() == 0 {
        return Err(StorageError::NotFound);
    }
    let granted: Vec<String> = sqlx::query("SELECT DISTINCT permission FROM role_permissions WHERE api = $1")
        .bind(&a.identifier)
        .fetch_all(&mut *tx)
        .await?
        .iter()
        .map(|r| r.try_get("permission"))
        .collect::<std::result::Result<_, _>>()?;
    for p in granted.iter().filter(|p| !a.permissions.contains(p)) {
        sqlx::query("DELETE FROM role_permissions WHERE api = $1 AND permission = $2")
            .bind(&a.identifier)
            .bind(p)
            .execute(&mut *tx)
            .await?;
    }
    let clients = sqlx::query("SELECT client_id, permissions FROM client_apis WHERE api = $1")
        .bind(&a.identifier)
        .fetch_all(&mut *tx)
        .await?;
    for r in &clients {
        let id: String = r.try_get("client_id")?;
        let kept: Vec<String> = get_list(r, "permissions")?.into_iter().filter(|p| a.permissions.contains(p)).collect();
        sqlx::query("UPDATE client_apis SET permissions = $3 WHERE client_id = $1 AND api = $2")
            .bind(&id)
            .bind(&a.identifier)
            .bind(to_json_list(&kept))
            .execute(&mut *tx)
            .await?;
    }
    super::commit(tx).await?;
    Ok(())
}

pub async fn find(db: &Db, identifier: &str) -> Result<Option<Api>> {
    let sql = sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM apis WHERE identifier = $1"));
    let row = sqlx::query(sql).bind(identifier).fetch_optional(db.pool()).await?;
    row.as_ref().map(from_row).transpose()
}

pub async fn list(db: &Db) -> Result<Vec<Api>> {
    let sql = sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM apis ORDER BY identifier"));
    sqlx::query(sql).fetch_all(db.pool()).await?.iter().map(from_row).collect()
}

/// The longest token lifetime any API sets (signing keys stay published that long).
pub async fn max_token_ttl(db: &Db) -> Result<Option<u64>> {
    let v: Option<i64> =
        sqlx::query("SELECT MAX(token_ttl_secs) AS m FROM apis").fetch_one(db.pool()).await?.try_get("m")?;
    Ok(v.map(|v| v.max(0) as u64))
}

pub async fn delete(db: &Db, identifier: &str) -> Result<()> {
    let mut tx = db.begin().await?;
    sqlx::query("UPDATE clients SET default_audience = NULL WHERE default_audience = $1")
        .bind(identifier)
        .execute(&mut *tx)
        .await?;
    let res = sqlx::query("DELETE FROM apis WHERE identifier = $1").bind(identifier).execute(&mut *tx).await?;
    if res.rows_affected() == 0 {
        return Err(StorageError::NotFound);
    }
    super::commit(tx).await?;
    Ok(())
}

/// The permissions on `api` that `client_id` may ask for; None: not granted.
pub async fn client_grant(db: &Db, client_id: &str, api: &str) -> Result<Option<Vec<String>>> {
    let row = sqlx::query("SELECT permissions FROM client_apis WHERE client_id = $1 AND api = $2")
        .bind(client_id)
        .bind(api)
        .fetch_optional(db.pool())
        .await?;
    row.as_ref().map(|r| get_list(r, "permissions")).transpose()
}

/// Every API grant of a client: (api, permissions).
pub async fn client_grants(db: &Db, client_id: &str) -> Result<Vec<(String, Vec<String>)>> {
    let rows = sqlx::query("SELECT api, permissions FROM client_apis WHERE client_id = $1 ORDER BY api")
        .bind(client_id)
        .fetch_all(db.pool())
        .await?;
    rows.iter().map(|r| Ok((r.try_get("api")?, get_list(r, "permissions")?))).collect()
}

/// Sets the permissions `client_id` may ask for on `api` (None removes the grant).
pub async fn set_client_grant(db: &Db, client_id: &str, api: &str, permissions: Option<&[String]>) -> Result<()> {
    match permissions {
        Some(p) => {
            sqlx::query(
                "INSERT INTO client_apis (client_id, api, permissions) VALUES ($1, $2, $3)
                 ON CONFLICT (client_id, api) DO UPDATE SET permissions = excluded.permissions",
            )
            .bind(client_id)
            .bind(api)
            .bind(to_json_list(p))
            .execute(db.pool())
            .await?;
        }
        None => {
            sqlx::query("DELETE FROM client_apis WHERE client_id = $1 AND api = $2")
                .bind(client_id)
                .bind(api)
                .execute(db.pool())
                .await?;
        }
    }
    Ok(())
}

/// Forgets a removed client's grants.
pub async fn delete_client_grants(db: &Db, client_id: &str) -> Result<()> {
    sqlx::query("DELETE FROM client_apis WHERE client_id = $1").bind(client_id).execute(db.pool()).await?;
    Ok(())
}
