//! `sesame user`: manage accounts. A user is named by id or by email.

use anyhow::{anyhow, bail};
use clap::{Args, Subcommand};
use serde_json::json;

use super::{Out, not_found};
use crate::audit::{Event, Kind};
use crate::config::Config;
use crate::crypto::password;
use crate::domain::{Clock, User, validate_email};
use crate::storage::{Db, StorageError, users as store};

#[derive(Subcommand, Debug)]
pub enum UserCmd {
    /// Create a user.
    Add {
        #[arg(long)]
        email: String,
        #[command(flatten)]
        password: PasswordArgs,
        #[arg(long)]
        name: Option<String>,
        /// Mark the email as verified.
        #[arg(long)]
        email_verified: bool,
    },
    /// List users, ordered by email.
    List {
        #[arg(long, default_value_t = 100)]
        limit: i64,
        #[arg(long, default_value_t = 0)]
        offset: i64,
    },
    /// Show one user (by id or email).
    Show { user: String },
    /// Replace a user's password. Ends the user's sessions (with back-channel
    /// logout) and revokes their refresh tokens except offline_access ones.
    SetPassword {
        user: String,
        #[command(flatten)]
        password: PasswordArgs,
        /// Revoke offline_access refresh tokens too.
        #[arg(long)]
        revoke_all: bool,
    },
    /// Stop a user from signing in. Ends the user's sessions (with back-channel
    /// logout) and revokes their refresh tokens except offline_access ones.
    Disable {
        user: String,
        /// Revoke offline_access refresh tokens too.
        #[arg(long)]
        revoke_all: bool,
    },
    /// Let a disabled user sign in again.
    Enable { user: String },
    /// Delete a user.
    Remove { user: String },
    /// Import users from Auth0: the bulk user export, the password-hash export
    /// (merged with it by id or email) and Auth0's import format; bcrypt and
    /// argon2 hashes. Idempotent: a re-run updates, never duplicates.
    Import {
        #[arg(required = true)]
        files: Vec<std::path::PathBuf>,
        /// Keep Auth0's user_id (`auth0|…`) as the `sub`.
        #[arg(long)]
        keep_ids: bool,
        /// Say what would happen; write nothing.
        #[arg(long)]
        dry_run: bool,
        /// Map an Auth0 connection to a provider id, e.g. google-oauth2=google.
        #[arg(long = "map-connection", value_name = "AUTH0=ID")]
        map_connection: Vec<String>,
    },
    /// Give a user a role (permissions on APIs, access to restricted clients).
    GrantRole { user: String, role: String },
    /// Take a directly granted role away (roles through groups stay).
    RevokeRole { user: String, role: String },
    /// List the user's sessions.
    Sessions { user: String },
    /// End every session of the user, with back-channel logout now and
    /// front-channel logout on the browser's next visit.
    EndSessions {
        user: String,
        /// Revoke offline_access refresh tokens too.
        #[arg(long)]
        revoke_all: bool,
    },
    /// List the user's second factors (authenticator apps, passkeys) and
    /// how many recovery codes are left.
    Factors { user: String },
    /// Remove every second factor, recovery code and remembered browser of
    /// the user (a lost phone); the user is mailed, and enrols again at the
    /// next sign-in where a second factor is required.
    ResetMfa { user: String },
    /// Remove a linked upstream identity (refused when it is the user's last
    /// way to sign in: no password and no other identity).
    Unlink {
        user: String,
        /// The provider id (`[[providers]] id`).
        #[arg(long)]
        provider: String,
        /// One identity's upstream subject, when the user has several there.
        #[arg(long)]
        subject: Option<String>,
    },
}

#[derive(Args, Debug)]
pub struct PasswordArgs {
    /// Read the password from stdin (preferred: it stays out of shell history).
    #[arg(long, conflicts_with = "password")]
    password_stdin: bool,
    /// The password on the command line.
    #[arg(long)]
    password: Option<String>,
}

impl PasswordArgs {
    fn read(self) -> anyhow::Result<Option<String>> {
        match (self.password_stdin, self.password) {
            (true, _) => Ok(Some(super::read_stdin_line("password")?)),
            (false, p) => Ok(p),
        }
    }
}

pub async fn run(cmd: UserCmd, cfg: &Config, out: &Out) -> anyhow::Result<()> {
    let db = super::open(cfg).await?;
    let now = Clock::system().now();
    match cmd {
        UserCmd::Add { email, password, name, email_verified } => {
            validate_email(&email).map_err(|e| anyhow!(e))?;
            let password_hash = match password.read()? {
                Some(p) => {
                    password::Policy::from_config(&cfg.passwords).check(&p)?;
                    Some(password::hash(p).await?)
                }
                None => None,
            };
            let user = User {
                user_id: uuid::Uuid::new_v4().to_string(),
                email: Some(email.trim().to_string()),
                email_verified,
                name: name.filter(|n| !n.trim().is_empty()),
                picture: None,
                password_hash,
                disabled: false,
                created_at: now,
                updated_at: now,
            };
            store::insert(&db, &user).await.map_err(|e| match e {
                StorageError::Conflict(_) => {
                    anyhow!("a user with email {} already exists", user.email_or_empty())
                }
                e => e.into(),
            })?;
            show(out, &db, &user).await
        }
        UserCmd::List { limit, offset } => {
            let list = store::list(&db, limit.clamp(1, 10_000), offset.max(0)).await?;
            if out.json {
                return out.print_json(&list);
            }
            println!("{:<36} {:<8} EMAIL", "USER_ID", "STATUS");
            for u in list {
                println!("{:<36} {:<8} {}", u.user_id, if u.disabled { "disabled" } else { "active" }, u.label());
            }
            Ok(())
        }
        UserCmd::Show { user } => show(out, &db, &find(&db, &user).await?).await,
        UserCmd::SetPassword { user, password, revoke_all } => {
            let mut u = find_to_change(&db, &user).await?;
            let Some(p) = password.read()? else { bail!("give --password-stdin or --password") };
            password::Policy::from_config(&cfg.passwords).check(&p)?;
            u.password_hash = Some(password::hash(p).await?);
            u.updated_at = now;
            store::update(&db, &u).await?;
            super::record(Event::new(Kind::PasswordChanged).account(&u));
            let ended = end_sessions(cfg, &db, &u, revoke_all, now, "password_changed").await?;
            out.done(
                &format!("password set for {}; {ended} session(s) ended", u.label()),
                &json!({ "user_id": u.user_id, "password_set": true, "sessions_ended": ended }),
            )
        }
        UserCmd::Disable { user, revoke_all } => {
            let u = set_disabled(&db, &user, true, now).await?;
            let ended = end_sessions(cfg, &db, &u, revoke_all, now, "disabled").await?;
            if out.json {
                let mut v = serde_json::to_value(&u)?;
                v["sessions_ended"] = json!(ended);
                return out.print_json(&v);
            }
            show(out, &db, &u).await?;
            println!("sessions ended: {ended}");
            Ok(())
        }
        UserCmd::Enable { user } => show(out, &db, &set_disabled(&db, &user, false, now).await?).await,
        UserCmd::Remove { user } => {
            let u = find_to_change(&db, &user).await?;
            store::delete(&db, &u.user_id).await?;
            out.done(&format!("removed {}", u.label()), &json!({ "removed": u.user_id }))
        }
        UserCmd::Import { files, keep_ids, dry_run, map_connection } => {
            let mut connections = std::collections::HashMap::new();
            for m in map_connection {
                let (from, to) =
                    m.split_once('=').ok_or_else(|| anyhow!("--map-connection takes AUTH0=ID, not `{m}`"))?;
                connections.insert(from.to_string(), to.to_string());
            }
            let mut values = Vec::new();
            for f in &files {
                let text = std::fs::read_to_string(f).map_err(|e| anyhow!("cannot read {}: {e}", f.display()))?;
                values.extend(crate::import::parse(&text).map_err(|e| anyhow!("{}: {e}", f.display()))?);
            }
            let audit = super::auditor(cfg, &db).await.ok();
            let opts = crate::import::Options { audit, keep_ids, dry_run, connections };
            let report = crate::import::run(&db, values, &opts, now).await?;
            if out.json {
                return out.print_json(&report);
            }
            let verb = if dry_run { "would be" } else { "were" };
            println!(
                "{} user(s) {verb} created, {} updated, {} identit(ies) linked, {} skipped",
                report.created,
                report.updated,
                report.identities_linked,
                report.skipped.len()
            );
            for s in &report.skipped {
                println!("skipped {}: {}", s.user, s.reason);
            }
            Ok(())
        }
        UserCmd::GrantRole { user, role } => {
            let u = find_to_change(&db, &user).await?;
            crate::access::user_role(&db, &u.user_id, &role, true).await.map_err(super::access_error)?;
            out.done(&format!("{} holds role {role}", u.label()), &json!({ "user_id": u.user_id, "granted": role }))
        }
        UserCmd::RevokeRole { user, role } => {
            let u = find_to_change(&db, &user).await?;
            crate::access::user_role(&db, &u.user_id, &role, false).await.map_err(super::access_error)?;
            out.done(
                &format!("{} no longer holds role {role} directly", u.label()),
                &json!({ "user_id": u.user_id, "revoked": role }),
            )
        }
        UserCmd::Sessions { user } => {
            let u = find_to_change(&db, &user).await?;
            let list = crate::storage::sessions::list_for_user(&db, &u.user_id).await?;
            let live: Vec<_> = list.iter().filter(|s| s.expires_at > now && s.idle_expires_at > now).collect();
            if out.json {
                let v: Vec<_> = live
                    .iter()
                    .map(|s| {
                        json!({ "sid": s.sid, "auth_time": s.auth_time, "amr": s.amr, "idp": s.idp,
                            "last_seen_at": s.last_seen_at, "expires_at": s.expires_at })
                    })
                    .collect();
                return out.print_json(&v);
            }
            println!("{:<24} {:<26} {:<26} HOW", "SID", "SIGNED IN", "LAST SEEN");
            for s in live {
                let how = s.idp.clone().unwrap_or_else(|| s.amr.join(" "));
                println!(
                    "{:<24} {:<26} {:<26} {how}",
                    s.sid,
                    crate::domain::rfc3339(s.auth_time),
                    crate::domain::rfc3339(s.last_seen_at)
                );
            }
            Ok(())
        }
        UserCmd::EndSessions { user, revoke_all } => {
            let u = find_to_change(&db, &user).await?;
            let ended = end_sessions(cfg, &db, &u, revoke_all, now, "admin").await?;
            out.done(
                &format!("{ended} session(s) of {} ended", u.label()),
                &json!({ "user_id": u.user_id, "sessions_ended": ended }),
            )
        }
        UserCmd::Factors { user } => super::factors::list(&db, &find(&db, &user).await?, out).await,
        UserCmd::ResetMfa { user } => super::factors::reset(cfg, &find_to_change(&db, &user).await?, out).await,
        UserCmd::Unlink { user, provider, subject } => {
            let u = find_to_change(&db, &user).await?;
            let removed =
                crate::accounts::unlink(&db, &u, &provider, subject.as_deref()).await.map_err(|e| match e {
                    crate::accounts::UnlinkError::NotLinked => {
                        not_found(format!("{} has no identity at `{provider}`", u.label()))
                    }
                    e => anyhow!(e),
                })?;
            super::record(Event::new(Kind::IdentityUnlinked).account(&u).method(provider.clone()));
            out.done(
                &format!("unlinked {removed} identity(ies) at {provider} from {}", u.label()),
                &json!({ "user_id": u.user_id, "provider": provider, "removed": removed }),
            )
        }
    }
}

async fn set_disabled(db: &Db, user: &str, disabled: bool, now: i64) -> anyhow::Result<User> {
    let mut u = find_to_change(db, user).await?;
    u.disabled = disabled;
    u.updated_at = now;
    store::update(db, &u).await?;
    Ok(u)
}

/// Ends the user's sessions as a logout would, and waits for the back-channel
/// logout of every client that registered one (signing needs the keys, so
/// the server's state is opened for it). Returns how many sessions ended.
async fn end_sessions(cfg: &Config, db: &Db, u: &User, revoke_all: bool, now: i64, why: &str) -> anyhow::Result<usize> {
    let ended = crate::accounts::end_sessions(db, &u.user_id, revoke_all, now).await?;
    for s in &ended {
        let e = Event::new(Kind::SessionEnded).user(u.user_id.clone()).sid(&s.sid);
        super::record(e.details(json!({ "why": why })));
    }
    if ended.iter().all(|s| s.client_ids.is_empty()) {
        return Ok(ended.len());
    }
    match crate::state::AppState::init(cfg.clone(), Clock::system()).await {
        Ok(state) => {
            for s in &ended {
                state.logouts.deliver_all(&s.sid, &u.user_id, &s.client_ids).await;
            }
            state.db.close().await;
        }
        Err(e) => eprintln!("warning: sessions ended, but no back-channel logout was sent: {e:#}"),
    }
    Ok(ended.len())
}

pub(super) async fn find(db: &Db, key: &str) -> anyhow::Result<User> {
    let found =
        if key.contains('@') { store::find_by_email(db, key).await? } else { store::find_by_id(db, key).await? };
    found.ok_or_else(|| not_found(format!("no user `{key}`")))
}

/// The user a change is for. An address names a user only when it is
/// verified there: an unverified one may be a stranger's claim, which must
/// not receive what the change gives (a role, a password, a link).
pub(super) async fn find_to_change(db: &Db, key: &str) -> anyhow::Result<User> {
    let u = find(db, key).await?;
    if key.contains('@') && !u.email_verified {
        return Err(not_found(format!(
            "`{key}` is not verified on user {}: an unverified address may be someone else's claim; name the user by id",
            u.user_id
        )));
    }
    Ok(u)
}

async fn show(out: &Out, db: &Db, u: &User) -> anyhow::Result<()> {
    let identities = crate::storage::identities::for_user(db, &u.user_id).await?;
    let held = crate::storage::roles::access_of(db, &u.user_id, None).await?;
    if out.json {
        let mut v = serde_json::to_value(u)?;
        if let Some(o) = v.as_object_mut() {
            o.insert("has_password".into(), json!(u.password_hash.is_some()));
            o.insert("roles".into(), json!(held.roles));
            o.insert("groups".into(), json!(held.groups));
            let ids: Vec<_> = identities
                .iter()
                .map(|i| {
                    json!({
                        "provider": i.provider,
                        "subject": i.subject,
                        "email": i.email,
                        "email_verified": i.email_verified,
                        "created_at": i.created_at,
                        "last_login_at": i.last_login_at,
                    })
                })
                .collect();
            o.insert("identities".into(), json!(ids));
        }
        return out.print_json(&v);
    }
    println!("user_id: {}", u.user_id);
    match &u.email {
        Some(e) => println!("email: {e}{}", if u.email_verified { " (verified)" } else { "" }),
        None => println!("email: none"),
    }
    if let Some(n) = &u.name {
        println!("name: {n}");
    }
    println!("password: {}", if u.password_hash.is_some() { "set" } else { "none" });
    println!("status: {}", if u.disabled { "disabled" } else { "active" });
    if !held.roles.is_empty() || !held.groups.is_empty() {
        println!("roles: {}", held.roles.join(" "));
        println!("groups: {}", held.groups.join(" "));
    }
    for i in &identities {
        println!(
            "identity: {} {} (linked {}, last sign-in {})",
            i.provider,
            i.subject,
            crate::domain::rfc3339(i.created_at),
            crate::domain::rfc3339(i.last_login_at)
        );
    }
    Ok(())
}
