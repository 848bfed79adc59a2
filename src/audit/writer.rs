//! The writer task: from the first event it waits up to `LINGER` for more
//! (or until `BATCH` are queued) and writes them in one statement, so a busy
//! server writes a few large inserts a second instead of one per request, and
//! a quiet one writes each event within `LINGER`.

use std::time::Duration;

use tokio::sync::mpsc;

use super::{Event, Msg};
use crate::storage::Db;

const BATCH: usize = 512;
const LINGER: Duration = Duration::from_millis(25);

pub(super) async fn run(db: Db, mut rx: mpsc::Receiver<Msg>) {
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
            write(&db, &batch).await;
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

/// Three tries a second apart (the database may be restarting); then the
/// batch is given up with an error line naming how many events were lost.
async fn write(db: &Db, batch: &[Event]) {
    for attempt in 1..=3 {
        match crate::storage::audit::insert_batch(db, batch).await {
            Ok(()) => return,
            Err(e) if attempt < 3 => {
                tracing::warn!(error = %e, events = batch.len(), attempt, "writing audit events failed; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            Err(e) => {
                tracing::error!(error = %e, events = batch.len(), "audit events lost: the audit database refused them")
            }
        }
    }
}
