//! `sesame provider`: the upstream identity providers declared in
//! `[[providers]]` (they are edited in the config file, not here).

use clap::Subcommand;
use serde_json::json;

use super::{Exit, Out, not_found};
use crate::config::Config;
use crate::domain::Clock;
use crate::federation::Registry;

#[derive(Subcommand, Debug)]
pub enum ProviderCmd {
    /// List the configured providers and the callback URL each must be registered with.
    List,
    /// Fetch a provider's discovery document and keys (or reach its endpoints)
    /// and say in one line what is wrong; exits 1 when something is.
    Check { id: String },
}

pub async fn run(cmd: ProviderCmd, cfg: &Config, out: &Out) -> anyhow::Result<()> {
    let issuer = crate::issuer::Issuer::new(&cfg.issuer)?;
    let registry = Registry::new(cfg, issuer.as_str())?;
    match cmd {
        ProviderCmd::List => {
            let rows: Vec<_> = registry
                .all()
                .iter()
                .map(|p| {
                    json!({
                        "id": p.id(),
                        "name": p.name,
                        "kind": p.kind().as_str(),
                        "enabled": p.cfg.enabled,
                        "create_users": p.cfg.create_users,
                        "issuer": p.issuer(),
                        "callback": p.callback,
                    })
                })
                .collect();
            if out.json {
                return out.print_json(&rows);
            }
            println!("{:<16} {:<10} {:<8} CALLBACK", "ID", "KIND", "ENABLED");
            for p in registry.all() {
                println!("{:<16} {:<10} {:<8} {}", p.id(), p.kind().as_str(), p.cfg.enabled, p.callback);
            }
            Ok(())
        }
        ProviderCmd::Check { id } => {
            let p = registry
                .all()
                .iter()
                .find(|p| p.id() == id)
                .ok_or_else(|| not_found(format!("no provider `{id}` in the config")))?;
            match p.check(Clock::system().now()).await {
                Ok(summary) => {
                    out.done(&format!("{id}: ok: {summary}"), &json!({ "id": id, "ok": true, "detail": summary }))
                }
                Err(why) => {
                    if out.json {
                        out.print_json(&json!({ "id": id, "ok": false, "detail": why }))?;
                    }
                    Err(Exit { code: 1, message: format!("{id}: {why}") }.into())
                }
            }
        }
    }
}
