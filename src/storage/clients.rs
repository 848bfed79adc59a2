//! Client rows: one lookup by primary key per request, lists stored as JSON text.

use sqlx::any::AnyRow;
use sqlx::{Any, Executor, Row};

use super::{Db, Result, StorageError, get_bool, get_list, to_json_list};
use crate::domain::Client;

const COLUMNS: &str = "client_id, name, secret_hash, is_public, first_party, redirect_uris, \
    post_logout_redirect_uris, web_origins, grant_types, id_token_alg, token_endpoint_auth_method, \
    backchannel_logout_uri, frontchannel_logout_uri, refresh_leeway_secs, introspect_any, source, require_roles, \
    require_groups, default_audience, rbac_claims, require_mfa, require_dpop, cross_origin_loc, cross_origin_authentication, \
    created_at, updated_at";

fn from_row(r: &AnyRow) -> Result<Client> {
    let alg: Option<String> = r.try_get("id_token_alg")?;
    Ok(Client {
        client_id: r.try_get("client_id")?,
        name: r.try_get("name")?,
        secret_hash: r.try_get("secret_hash")?,
        public: get_bool(r, "is_public")?,
        first_party: get_bool(r, "first_party")?,
        redirect_uris: get_list(r, "redirect_uris")?,
        post_logout_redirect_uris: get_list(r, "post_logout_redirect_uris")?,
        web_origins: get_list(r, "web_origins")?,
        grant_types: get_list(r, "grant_types")?,
        id_token_alg: alg.map(|a| a.parse().map_err(StorageError::Corrupt)).transpose()?,
        token_endpoint_auth_method: r.try_get("token_endpoint_auth_method")?,
        backchannel_logout_uri: r.try_get("backchannel_logout_uri")?,
        frontchannel_logout_uri: r.try_get("frontchannel_logout_uri")?,
        refresh_leeway_secs: r.try_get::<Option<i64>, _>("refresh_leeway_secs")?.map(|v| v.max(0) as u64),
        introspect_any: get_bool(r, "introspect_any")?,
        source: r.try_get("source")?,
        require_roles: get_list(r, "require_roles")?,
        require_groups: get_list(r, "require_groups")?,
        default_audience: r.try_get("default_audience")?,
        rbac_claims: get_bool(r, "rbac_claims")?,
        require_mfa: get_bool(r, "require_mfa")?,
        require_dpop: get_bool(r, "require_dpop")?,
        cross_origin_loc: r.try_get("cross_origin_loc")?,
        cross_origin_authentication: get_bool(r, "cross_origin_authentication")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

pub async fn insert(db: &Db, c: &Client) -> Result<()> {
    insert_in(db.pool(), c).await
}

type Query<'q> = sqlx::query::Query<'q, Any, sqlx::any::AnyArguments>;

/// Binds $1..$24, shared by INSERT and UPDATE (same placeholder numbering).
fn bind_fields<'q>(q: Query<'q>, c: &'q Client) -> Query<'q> {
    q.bind(&c.client_id)
        .bind(&c.name)
        .bind(&c.secret_hash)
        .bind(c.public)
        .bind(c.first_party)
        .bind(to_json_list(&c.redirect_uris))
        .bind(to_json_list(&c.post_logout_redirect_uris))
        .bind(to_json_list(&c.web_origins))
        .bind(to_json_list(&c.grant_types))
        .bind(c.id_token_alg.map(|a| a.as_str()))
        .bind(&c.token_endpoint_auth_method)
        .bind(&c.backchannel_logout_uri)
        .bind(&c.frontchannel_logout_uri)
        .bind(&c.source)
        .bind(c.refresh_leeway_secs.map(|v| v as i64))
        .bind(c.introspect_any)
        .bind(to_json_list(&c.require_roles))
        .bind(to_json_list(&c.require_groups))
        .bind(&c.default_audience)
        .bind(c.rbac_claims)
        .bind(c.require_mfa)
        .bind(c.require_dpop)
        .bind(&c.cross_origin_loc)
        .bind(c.cross_origin_authentication)
}

async fn insert_in<'e, E: Executor<'e, Database = Any>>(ex: E, c: &Client) -> Result<()> {
    let q = sqlx::query(
        "INSERT INTO clients (client_id, name, secret_hash, is_public, first_party, redirect_uris,
            post_logout_redirect_uris, web_origins, grant_types, id_token_alg, token_endpoint_auth_method,
            backchannel_logout_uri, frontchannel_logout_uri, source, refresh_leeway_secs, introspect_any,
            require_roles, require_groups, default_audience, rbac_claims, require_mfa, require_dpop, cross_origin_loc,
            cross_origin_authentication, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23,
            $24, $25, $26)",
    );
    bind_fields(q, c)
        .bind(c.created_at)
        .bind(c.updated_at)
        .execute(ex)
        .await
        .map_err(|e| StorageError::on_unique(e, "client"))?;
    Ok(())
}

/// Replaces every mutable field of an existing client.
pub async fn update(db: &Db, c: &Client) -> Result<()> {
    update_in(db.pool(), c).await
}

async fn update_in<'e, E: Executor<'e, Database = Any>>(ex: E, c: &Client) -> Result<()> {
    let q = sqlx::query(
        "UPDATE clients SET name = $2, secret_hash = $3, is_public = $4, first_party = $5, redirect_uris = $6,
            post_logout_redirect_uris = $7, web_origins = $8, grant_types = $9, id_token_alg = $10,
            token_endpoint_auth_method = $11, backchannel_logout_uri = $12, frontchannel_logout_uri = $13,
            source = $14, refresh_leeway_secs = $15, introspect_any = $16, require_roles = $17,
            require_groups = $18, default_audience = $19, rbac_claims = $20, require_mfa = $21, require_dpop = $22,
            cross_origin_loc = $23, cross_origin_authentication = $24, updated_at = $25
         WHERE client_id = $1",
    );
    let res = bind_fields(q, c).bind(c.updated_at).execute(ex).await?;
    if res.rows_affected() == 0 { Err(StorageError::NotFound) } else { Ok(()) }
}

pub async fn find(db: &Db, client_id: &str) -> Result<Option<Client>> {
    let sql = sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM clients WHERE client_id = $1"));
    let row = sqlx::query(sql).bind(client_id).fetch_optional(db.pool()).await?;
    row.as_ref().map(from_row).transpose()
}

pub async fn list(db: &Db) -> Result<Vec<Client>> {
    let sql = sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM clients ORDER BY client_id"));
    let rows = sqlx::query(sql).fetch_all(db.pool()).await?;
    rows.iter().map(from_row).collect()
}

pub async fn delete(db: &Db, client_id: &str) -> Result<()> {
    let res = sqlx::query("DELETE FROM clients WHERE client_id = $1").bind(client_id).execute(db.pool()).await?;
    if res.rows_affected() == 0 { Err(StorageError::NotFound) } else { Ok(()) }
}

/// Makes the `config` clients in the database exactly `wanted`: inserts new ones,
/// updates changed ones, deletes those no longer declared. Runs in one transaction
/// so replicas starting together never see half a sync.
pub async fn sync_static(db: &Db, wanted: &[Client]) -> Result<()> {
    let mut tx = db.begin().await?;
    let existing: Vec<(String, String)> = sqlx::query("SELECT client_id, source FROM clients")
        .fetch_all(&mut *tx)
        .await?
        .iter()
        .map(|r| Ok((r.try_get("client_id")?, r.try_get("source")?)))
        .collect::<Result<_>>()?;
    for c in wanted {
        match existing.iter().find(|(id, _)| id == &c.client_id) {
            Some((_, src)) if src != "config" => {
                return Err(StorageError::Conflict("a CLI-managed client with a static client's id"));
            }
            Some(_) => update_in(&mut *tx, c).await?,
            None => insert_in(&mut *tx, c).await?,
        }
    }
    for (id, src) in &existing {
        if src == "config" && !wanted.iter().any(|c| &c.client_id == id) {
            sqlx::query("DELETE FROM clients WHERE client_id = $1").bind(id).execute(&mut *tx).await?;
        }
    }
    super::commit(tx).await?;
    Ok(())
}
