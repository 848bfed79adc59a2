//! `sesame admin`: the admin console's first administrator.

use clap::Subcommand;

use super::{Out, open};
use crate::config::Config;
use crate::domain::Clock;
use crate::state::AppState;

#[derive(Subcommand, Debug)]
pub enum AdminCmd {
    /// Print a one-time link (valid an hour) that creates an administrator
    /// account holding the `sesame-admin` role (another one, when some exist).
    CreateLink,
}

/// `sesame admin create-link`.
pub async fn run(cmd: AdminCmd, cfg: &Config, out: &Out) -> anyhow::Result<()> {
    match cmd {
        AdminCmd::CreateLink => {
            let db = open(cfg).await?;
            let api = crate::access::management_audience(&cfg.issuer);
            if crate::storage::apis::find(&db, &api).await?.is_none() {
                anyhow::bail!(
                    "no server has run with the issuer {} on this database: start `sesame serve` first, and give this command the same SESAME_ISSUER",
                    cfg.issuer
                );
            }
            let link = crate::console::create_link(&db, &cfg.issuer, "cli", Clock::system().now()).await?;
            let expires = crate::console::setup::LINK_TTL_SECS / 60;
            out.done(&format!("{link}\n(works once, for {expires} minutes)"), &serde_json::json!({ "link": link }))
        }
    }
}

/// With nobody holding `sesame-admin`, a one-time link that creates the
/// first administrator, in the log (every start makes a new one until then).
pub async fn first_admin_link(state: &AppState) -> anyhow::Result<()> {
    if crate::storage::roles::has_holder(&state.db, crate::access::ADMIN_ROLE).await? {
        return Ok(());
    }
    let link = crate::console::create_link(&state.db, state.issuer.as_str(), "serve", state.clock.now()).await?;
    tracing::warn!(
        setup_link = %link,
        "no administrator yet: open this link within an hour to create one (it works once; `sesame admin create-link` makes another)"
    );
    Ok(())
}
