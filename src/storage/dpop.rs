//! DPoP proofs already presented: one row per proof (a hash of its key's
//! thumbprint and its `jti`), until the proof could no longer be accepted.

use super::{Db, Result};

/// Records a proof; false when it was presented before (on any replica).
pub async fn first_use(db: &Db, proof_hash: &str, expires_at: i64) -> Result<bool> {
    let res = sqlx::query(
        "INSERT INTO dpop_proofs (proof_hash, expires_at) VALUES ($1, $2) ON CONFLICT (proof_hash) DO NOTHING",
    )
    .bind(proof_hash)
    .bind(expires_at)
    .execute(db.pool())
    .await?;
    Ok(res.rows_affected() == 1)
}
