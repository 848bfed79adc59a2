//! `sesame audit search`: the audit log, newest first.

use clap::{Args, Subcommand};

use super::Out;
use crate::audit::search::{self, Search, SearchError};
use crate::config::Config;

#[derive(Subcommand, Debug)]
pub enum AuditCmd {
    /// Events matching every filter given, newest first.
    Search(SearchArgs),
}

#[derive(Args, Debug)]
pub struct SearchArgs {
    /// A user id or an email address (also an address typed in a failed
    /// attempt for an account that does not exist).
    #[arg(long)]
    user: Option<String>,
    /// A client id.
    #[arg(long)]
    client: Option<String>,
    /// An event type, e.g. login_failure.
    #[arg(long = "type", value_name = "TYPE")]
    kind: Option<String>,
    /// success or failure.
    #[arg(long)]
    outcome: Option<String>,
    /// The client's IP address.
    #[arg(long)]
    ip: Option<String>,
    /// From: RFC 3339, or a duration back from now (30m, 2h, 7d).
    #[arg(long)]
    since: Option<String>,
    /// Until: RFC 3339, or a duration back from now.
    #[arg(long)]
    until: Option<String>,
    /// At most this many events (1-1000).
    #[arg(long, default_value_t = 50)]
    limit: i64,
    /// Continue after a previous search (its `next_cursor`).
    #[arg(long)]
    cursor: Option<String>,
}

pub async fn run(cmd: AuditCmd, cfg: &Config, out: &Out) -> anyhow::Result<()> {
    let AuditCmd::Search(a) = cmd;
    if !(1..=1000).contains(&a.limit) {
        return Err(super::Exit { code: 2, message: "--limit must be between 1 and 1000".into() }.into());
    }
    let db = super::open(cfg).await?;
    let auditor = super::auditor(cfg, &db).await?;
    let s = Search {
        user: a.user,
        client: a.client,
        kind: a.kind,
        outcome: a.outcome,
        ip: a.ip,
        since: a.since,
        until: a.until,
        cursor: a.cursor,
        after_id: None,
        limit: a.limit,
    };
    let now = crate::domain::Clock::system().now();
    let (events, next) = search::run(&db, &auditor, &s, now).await.map_err(|e| match e {
        SearchError::Invalid(m) => anyhow::Error::from(super::Exit { code: 2, message: m }),
        SearchError::Storage(e) => e.into(),
    })?;
    if out.json {
        return out.print_json(&serde_json::json!({ "events": events, "next_cursor": next }));
    }
    for e in &events {
        let mut line = format!("{}  {:<24} {:<7}", e.time, e.kind, e.outcome);
        for (k, v) in [
            ("user", &e.user_id),
            ("email", &e.email),
            ("client", &e.client_id),
            ("method", &e.method),
            ("reason", &e.reason),
            ("actor", &e.actor),
            ("ip", &e.ip),
        ] {
            if let Some(v) = v {
                line.push_str(&format!(" {k}={v}"));
            }
        }
        if let Some(d) = &e.details {
            line.push_str(&format!(" {d}"));
        }
        println!("{line}");
    }
    if let Some(c) = next {
        println!("(more: --cursor {c})");
    }
    Ok(())
}
