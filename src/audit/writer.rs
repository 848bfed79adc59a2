//! The writer task: from the first event it waits up to `LINGER` for more
//! (or until `BATCH` are queued) and writes them in a few statements, so a busy
//! server writes a few large inserts a second instead of one per request, and
//! a quiet one writes each event within `LINGER`.

use std::time::Duration;

use tokio::sync::mpsc;

use super::{Event, Msg};
use crate::storage::Db;

const BATCH: usize = 512;
const LINGER: Duration = Duration::from_millis(25);

pub(super) async fn run(db: Db, mut rx: mpsc::Receiver<Msg>, lost: std::sync::Arc<std::sync::atomic::AtomicU64>) {
    let mut batch: Vec<Event> = Vec::with_capacity(BATCH);
    let mut waiting = Vec::new();
    while let Some(msg) = rx.recv().await {
        take(msg, &mut batch, &mut waiting);
        let until = tokio::time::Instant::now() + LINGER;
        while batch.len() < BATCH && waiting.is_empty() {
            match tokio::time::timeout_at(until, rx.recv()).await {
                Ok(Some(m)) => take(m, &mut batch, &mut waiting),
                // Closed, or the linger is over: write what there is.
                Ok(None) | Err(_) => break,
            }
        }
        if !batch.is_empty() {
            let n = write(&db, &batch).await;
            if n > 0 {
                lost.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
                crate::telemetry::audit_dropped("refused", n);
            }
            crate::telemetry::audit_written(batch.len() as u64 - n);
            batch.clear();
        }
        for w in waiting.drain(..) {
            let _ = w.send(());
        }
    }
}

fn take(msg: Msg, batch: &mut Vec<Event>, waiting: &mut Vec<tokio::sync::oneshot::Sender<()>>) {
    match msg {
        Msg::Event(e) => batch.push(*e),
        Msg::Flush(w) => waiting.push(w),
    }
}

/// Writes `events`; returns how many were lost. They go in statements of
/// fixed sizes (`storage::audit::chunk_len`), each on its own (no
/// transaction held open between them). A statement the database refuses is
/// written again row by row, so one bad event costs that event (counted and
/// logged) and never its neighbours. When no row goes in, the database itself
/// is away: three tries a second apart, then the rest is given up with an
/// error line naming how many events were lost.
pub async fn write(db: &Db, events: &[Event]) -> u64 {
    let rows: Vec<_> = events.iter().map(Event::row).collect();
    let mut rest = &rows[..];
    let mut lost = 0;
    while !rest.is_empty() {
        let (chunk, tail) = rest.split_at(crate::storage::audit::chunk_len(rest.len()));
        match write_chunk(db, chunk).await {
            Written::Lost(n) => lost += n,
            Written::Away => {
                let n = rest.len() as u64;
                tracing::error!(events = n, "audit events lost: the audit database is away");
                return lost + n;
            }
        }
        rest = tail;
    }
    lost
}

enum Written {
    /// Written, but for this many rows the database refused.
    Lost(u64),
    /// Nothing could be written after three tries.
    Away,
}

async fn write_chunk(db: &Db, batch: &[crate::storage::audit::NewEvent<'_>]) -> Written {
    for attempt in 1..=3 {
        let Err(e) = crate::storage::audit::insert_batch(db, batch).await else { return Written::Lost(0) };
        // The database answered and refused: row by row, so only the bad
        // rows are lost. (While it is away, each row would wait for a
        // connection in vain: retry instead.)
        if !e.is_unavailable() {
            if batch.len() == 1 {
                tracing::error!(error = %e, event = batch[0].kind, "an audit event was refused and lost");
                return Written::Lost(1);
            }
            let mut failed = 0u64;
            for one in batch {
                if let Err(e) = crate::storage::audit::insert_batch(db, std::slice::from_ref(one)).await {
                    failed += 1;
                    tracing::error!(error = %e, event = one.kind, "an audit event was refused and lost");
                }
            }
            return Written::Lost(failed);
        }
        if attempt < 3 {
            tracing::warn!(error = %e, events = batch.len(), attempt, "writing audit events failed; retrying");
            tokio::time::sleep(Duration::from_secs(1)).await;
        } else {
            tracing::error!(error = %e, events = batch.len(), "audit events could not be written");
        }
    }
    Written::Away
}
