//! `sesame api`: APIs (resource servers) and the permissions they define.

use clap::Subcommand;
use serde_json::json;

use super::{Out, access_error};
use crate::access::{self, ApiChange, ApiSpec};
use crate::config::{Config, SigningAlg};
use crate::domain::Clock;

#[derive(Subcommand, Debug)]
pub enum ApiCmd {
    /// Register an API: access tokens for it carry its identifier as `aud`.
    Add {
        #[arg(long, value_name = "URL")]
        identifier: String,
        #[arg(long)]
        name: String,
        #[arg(long = "permission", value_name = "P", num_args = 1..)]
        permissions: Vec<String>,
        /// Access-token lifetime for this API (60-86400 s; default tokens.access_token_ttl_secs).
        #[arg(long, value_name = "SECS")]
        token_ttl: Option<u64>,
        /// Signing algorithm of its access tokens (default: the client's, then RS256).
        #[arg(long, value_name = "ALG")]
        alg: Option<SigningAlg>,
    },
    List,
    /// Change an API; `--permission` replaces the list (roles and clients lose
    /// the permissions it no longer defines).
    Update {
        identifier: String,
        #[arg(long)]
        name: Option<String>,
        #[arg(long = "permission", value_name = "P", num_args = 1..)]
        permissions: Vec<String>,
        #[arg(long, value_name = "SECS")]
        token_ttl: Option<u64>,
        #[arg(long, value_name = "ALG")]
        alg: Option<SigningAlg>,
    },
    /// Remove an API, its permissions on every role and every client's grant.
    Remove {
        identifier: String,
    },
}

pub async fn run(cmd: ApiCmd, cfg: &Config, out: &Out) -> anyhow::Result<()> {
    let db = super::open(cfg).await?;
    let now = Clock::system().now();
    match cmd {
        ApiCmd::Add { identifier, name, permissions, token_ttl, alg } => {
            let spec = ApiSpec { identifier, name, permissions, token_ttl_secs: token_ttl, alg };
            let api = access::add_api(&db, spec, now).await.map_err(access_error)?;
            show(out, &api)
        }
        ApiCmd::List => {
            let list = crate::storage::apis::list(&db).await?;
            if out.json {
                return out.print_json(&list);
            }
            println!("{:<40} {:<24} PERMISSIONS", "IDENTIFIER", "NAME");
            for a in list {
                println!("{:<40} {:<24} {}", a.identifier, a.name, a.permissions.join(" "));
            }
            Ok(())
        }
        ApiCmd::Update { identifier, name, permissions, token_ttl, alg } => {
            let change = ApiChange {
                name,
                permissions: (!permissions.is_empty()).then_some(permissions),
                token_ttl_secs: token_ttl,
                alg,
            };
            let api = access::update_api(&db, &identifier, change, &cfg.issuer, now).await.map_err(access_error)?;
            show(out, &api)
        }
        ApiCmd::Remove { identifier } => {
            access::remove_api(&db, &identifier, &cfg.issuer).await.map_err(access_error)?;
            out.done(&format!("removed {identifier}"), &json!({ "removed": identifier }))
        }
    }
}

fn show(out: &Out, a: &crate::domain::Api) -> anyhow::Result<()> {
    if out.json {
        return out.print_json(a);
    }
    println!("identifier: {}", a.identifier);
    println!("name: {}", a.name);
    println!("permissions: {}", a.permissions.join(" "));
    if let Some(t) = a.token_ttl_secs {
        println!("token_ttl: {t} s");
    }
    if let Some(alg) = a.alg {
        println!("alg: {alg}");
    }
    Ok(())
}
