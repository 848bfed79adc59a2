//! `sesame keys`: list, rotate, and make a master key.

use clap::Subcommand;

use super::Out;
use crate::config::{Config, SigningAlg};
use crate::crypto::keys;
use crate::domain::{Clock, rfc3339};

#[derive(Subcommand, Debug)]
pub enum KeysCmd {
    /// Show every signing key and whether it is pending, active, retired or expired.
    List,
    /// Add the next key for each algorithm (or only --alg). It is published at once
    /// and starts signing after the JWKS cache lifetime, so no verifier meets an unknown kid.
    Rotate {
        /// Rotate only this algorithm (repeatable).
        #[arg(long = "alg", value_name = "ALG")]
        algs: Vec<SigningAlg>,
        /// Seconds until the new key signs; default jwks_cache_secs + reload_interval_secs.
        #[arg(long, value_name = "SECS")]
        activate_in: Option<u64>,
    },
    /// Print a fresh random master key (base64) for SESAME_MASTER_KEY.
    NewMasterKey,
}

pub async fn run(cmd: KeysCmd, cfg: &Config, out: &Out) -> anyhow::Result<()> {
    let clock = Clock::system();
    let ttl = cfg.tokens.max_signed_ttl_secs() as i64;
    match cmd {
        KeysCmd::NewMasterKey => {
            let k = crate::crypto::random::bytes::<32>();
            let b64 = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, k);
            out.done(&b64, &serde_json::json!({ "master_key": b64 }))
        }
        KeysCmd::List => {
            let db = super::open(cfg).await?;
            // A retired key stays published for the longest lifetime an API sets too.
            let api_ttl = crate::storage::apis::max_token_ttl(&db).await?.unwrap_or(0) as i64;
            let list = keys::list_info(&db, clock.now(), ttl.max(api_ttl)).await?;
            if out.json {
                return out.print_json(&list);
            }
            println!("{:<44} {:<6} {:>3} {:<8} ACTIVATES", "KID", "ALG", "GEN", "STATUS");
            for k in list {
                let status = serde_json::to_value(k.status)?.as_str().unwrap_or_default().to_string();
                println!("{:<44} {:<6} {:>3} {:<8} {}", k.kid, k.alg, k.generation, status, rfc3339(k.activates_at));
            }
            Ok(())
        }
        KeysCmd::Rotate { algs, activate_in } => {
            let db = super::open(cfg).await?;
            let master = crate::startup::master_key(cfg)?;
            crate::startup::ensure_keys(&db, &master, &clock).await?;
            let algs = if algs.is_empty() { SigningAlg::ALL.to_vec() } else { algs };
            let lead = activate_in.unwrap_or(cfg.keys.jwks_cache_secs + cfg.keys.reload_interval_secs);
            if lead < cfg.keys.jwks_cache_secs {
                tracing::warn!("the new key signs before every JWKS cache can have seen it");
            }
            let now = clock.now();
            let made = crate::crypto::keygen::rotate(&db, &master, &algs, now, now + lead as i64).await?;
            if out.json {
                return out.print_json(&made);
            }
            for k in made {
                println!("{} {} signs from {}", k.alg, k.kid, rfc3339(k.activates_at));
            }
            Ok(())
        }
    }
}
