//! Attempt counters shared by every replica: a sliding window over the
//! current and the previous minute per bucket, counted in one statement.

use super::{Db, Result};

/// One bucket's counts after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counted {
    /// Seconds into the current window.
    pub into_window: i64,
    /// Attempts in the current window (this one included).
    pub n: i64,
    /// Attempts in the previous window.
    pub prev_n: i64,
}

impl Counted {
    /// Attempts in the last minute, the previous window weighted by how much
    /// of it the last minute still covers.
    pub fn in_last_minute(&self) -> f64 {
        self.prev_n as f64 * (60 - self.into_window) as f64 / 60.0 + self.n as f64
    }
}

/// Counts one attempt in each of `buckets` at `now`; the counts come back in
/// the order of `buckets`. A replica whose clock is behind never moves a
/// window back (which would forget the attempts counted in it): its attempt
/// counts in the newer window.
pub async fn count(db: &Db, buckets: &[String], now: i64) -> Result<Vec<Counted>> {
    count_in(db, buckets, now, 60).await
}

/// `count` over windows of `secs` seconds (a bucket keeps one window length).
/// `Counted::in_last_minute` then reads as "in the last window".
pub async fn count_in(db: &Db, buckets: &[String], now: i64, secs: i64) -> Result<Vec<Counted>> {
    if buckets.is_empty() {
        return Ok(Vec::new());
    }
    let secs = secs.max(1);
    let window = now - now.rem_euclid(secs);
    let values: Vec<String> = (0..buckets.len()).map(|i| format!("(${}, $1, 1, 0)", i + 2)).collect();
    // Only placeholders and the window length are formatted in; the buckets are bound.
    let sql = sqlx::AssertSqlSafe(format!(
        "INSERT INTO attempts (bucket, window_start, n, prev_n) VALUES {}
         ON CONFLICT (bucket) DO UPDATE SET
           prev_n = CASE WHEN excluded.window_start <= attempts.window_start THEN attempts.prev_n
                         WHEN attempts.window_start = excluded.window_start - {secs} THEN attempts.n
                         ELSE 0 END,
           n = CASE WHEN excluded.window_start <= attempts.window_start THEN attempts.n + 1 ELSE 1 END,
           window_start = CASE WHEN excluded.window_start <= attempts.window_start
                               THEN attempts.window_start ELSE excluded.window_start END
         RETURNING bucket, n, prev_n, window_start",
        values.join(", ")
    ));
    let window_len = secs;
    let mut q = sqlx::query_as::<_, (String, i64, i64, i64)>(sql).bind(window);
    for b in buckets {
        q = q.bind(b);
    }
    let rows = q.fetch_all(db.pool()).await?;
    Ok(buckets
        .iter()
        .map(|b| {
            let (n, prev_n, start) = rows.iter().find(|r| &r.0 == b).map(|r| (r.1, r.2, r.3)).unwrap_or((1, 0, window));
            Counted { into_window: (now - start).clamp(0, window_len - 1) * 60 / window_len, n, prev_n }
        })
        .collect())
}

/// Remembers `bucket` (an account at an address) as seen at `now`.
pub async fn remember(db: &Db, bucket: &str, now: i64) -> Result<()> {
    sqlx::query(
        "INSERT INTO known_addresses (bucket, seen_at) VALUES ($1, $2)
         ON CONFLICT (bucket) DO UPDATE SET seen_at = excluded.seen_at",
    )
    .bind(bucket)
    .bind(now)
    .execute(db.pool())
    .await?;
    Ok(())
}

/// Whether `bucket` was seen since `since`.
pub async fn is_known(db: &Db, bucket: &str, since: i64) -> Result<bool> {
    let row: Option<(i64,)> = sqlx::query_as("SELECT seen_at FROM known_addresses WHERE bucket = $1")
        .bind(bucket)
        .fetch_optional(db.pool())
        .await?;
    Ok(row.is_some_and(|(at,)| at >= since))
}
