//! Signing-key rows. Private keys arrive here already sealed; this module never
//! sees key material in the clear.

use sqlx::Row;

use super::{Db, Result, StorageError};

#[derive(Debug, Clone)]
pub struct KeyRow {
    pub kid: String,
    pub alg: String,
    pub generation: i64,
    pub public_jwk: String,
    pub private_key_sealed: Vec<u8>,
    pub created_at: i64,
    pub activates_at: i64,
}

/// Inserts a key. Returns `false` when another writer already took this
/// `(alg, generation)` slot, so concurrent first starts and rotations never
/// produce two keys for one slot.
pub async fn insert(db: &Db, k: &KeyRow) -> Result<bool> {
    let res = sqlx::query(
        "INSERT INTO signing_keys (kid, alg, generation, public_jwk, private_key_sealed, created_at, activates_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7)
         ON CONFLICT (alg, generation) DO NOTHING",
    )
    .bind(&k.kid)
    .bind(&k.alg)
    .bind(k.generation)
    .bind(&k.public_jwk)
    .bind(&k.private_key_sealed)
    .bind(k.created_at)
    .bind(k.activates_at)
    .execute(db.pool())
    .await
    .map_err(|e| StorageError::on_unique(e, "signing key"))?;
    Ok(res.rows_affected() == 1)
}

/// Every key, oldest generation first within each algorithm.
pub async fn list(db: &Db) -> Result<Vec<KeyRow>> {
    let rows = sqlx::query(
        "SELECT kid, alg, generation, public_jwk, private_key_sealed, created_at, activates_at
         FROM signing_keys ORDER BY alg, generation",
    )
    .fetch_all(db.pool())
    .await?;
    rows.iter()
        .map(|r| {
            Ok(KeyRow {
                kid: r.try_get("kid")?,
                alg: r.try_get("alg")?,
                generation: r.try_get("generation")?,
                public_jwk: r.try_get("public_jwk")?,
                private_key_sealed: r.try_get("private_key_sealed")?,
                created_at: r.try_get("created_at")?,
                activates_at: r.try_get("activates_at")?,
            })
        })
        .collect()
}

/// The highest generation stored for `alg` (0 when there is none).
pub async fn max_generation(db: &Db, alg: &str) -> Result<i64> {
    let g: Option<i64> = sqlx::query_scalar("SELECT MAX(generation) FROM signing_keys WHERE alg = $1")
        .bind(alg)
        .fetch_one(db.pool())
        .await?;
    Ok(g.unwrap_or(0))
}
