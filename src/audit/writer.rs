//! The writer task: takes whatever is queued (up to `BATCH` events) and
//! writes it in one statement, so a burst becomes a few large inserts and a
//! quiet server writes each event at once.

use std::time::Duration;

use tokio::sync::mpsc;

use super::{Event, Msg};
use crate::storage::Db;

const BATCH: usize = 256;

pub(super) async fn run(db: Db, mut rx: mpsc::Receiver<Msg>) {
    let mut batch: Vec<Event> = Vec::with_capacity(BATCH);
    let mut waiting = Vec::new();
    while let Some(msg) = rx.recv().await {
        take(msg, &mut batch, &mut waiting);
        while batch.len() < BATCH && waiting.is_empty() {
            match rx.try_recv() {
                Ok(m) => take(m, &mut batch, &mut waiting),
                Err(_) => break,
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
