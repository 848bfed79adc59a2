//! The `sesame` command line. Subcommand names and flags are a public contract:
//! operators' scripts depend on them, so add freely and never rename.

mod admin;
mod api;
mod audit;
mod client;
mod client_args;
mod factors;
mod keys;
mod provider;
mod role;
mod user;

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use serde::Serialize;

use crate::app;
use crate::config::{Config, LogFormat};
use crate::domain::Clock;
use crate::logging::{self, Sink};
use crate::state::AppState;
use crate::storage::Db;

#[derive(Parser, Debug)]
#[command(name = "sesame", version, about = "Sesame, a self-hosted OpenID Connect identity provider")]
pub struct Cli {
    /// TOML config file (keys documented in config/sesame.example.toml).
    #[arg(long, global = true, env = "SESAME_CONFIG", value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// Log format; overrides `log_format` from the config.
    #[arg(long, global = true, value_enum, value_name = "FORMAT")]
    pub log_format: Option<CliLogFormat>,
    /// Print machine-readable JSON instead of text.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum CliLogFormat {
    Text,
    Json,
}

// Parsed once per process: boxing the large variants would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the HTTP server (migrates the database first).
    Serve,
    /// Apply database migrations and exit.
    Migrate {
        /// Apply nothing: list the migrations that would run, and exit 1 if there are any.
        #[arg(long)]
        check: bool,
    },
    /// Validate the configuration and print it with secrets masked.
    CheckConfig,
    /// Exit 0 when the server's /healthz answers 200 (for container HEALTHCHECK).
    Healthcheck {
        /// URL to probe; default: http://<listen address>/healthz.
        #[arg(long)]
        url: Option<String>,
    },
    /// Signing keys.
    #[command(subcommand)]
    Keys(keys::KeysCmd),
    /// Registered applications.
    #[command(subcommand)]
    Client(client::ClientCmd),
    /// User accounts.
    #[command(subcommand)]
    User(user::UserCmd),
    /// Upstream identity providers (`[[providers]]` in the config).
    #[command(subcommand)]
    Provider(provider::ProviderCmd),
    /// APIs (resource servers) and their permissions.
    #[command(subcommand)]
    Api(api::ApiCmd),
    /// Roles: permissions on APIs, granted to users and groups.
    #[command(subcommand)]
    Role(role::RoleCmd),
    /// Groups of users, holding roles.
    #[command(subcommand)]
    Group(role::GroupCmd),
    /// The audit log of authentication actions.
    #[command(subcommand)]
    Audit(audit::AuditCmd),
    /// The admin console (`/admin`).
    #[command(subcommand)]
    Admin(admin::AdminCmd),
}

/// An error with a chosen exit code; every other error exits 2.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Exit {
    pub code: u8,
    pub message: String,
}

pub fn exit_code(e: &anyhow::Error) -> u8 {
    e.downcast_ref::<Exit>().map(|x| x.code).unwrap_or(2)
}

pub fn not_found(what: impl Into<String>) -> anyhow::Error {
    Exit { code: 1, message: what.into() }.into()
}

/// `sesame migrate --check`: what `sesame migrate` (or the next start) would
/// apply to the main database, without applying it; exit 1 if anything.
async fn migrate_check(cfg: &Config, out: &Out) -> anyhow::Result<()> {
    let db = crate::startup::open_db_unmigrated(cfg).await?;
    let pending = db.pending_migrations().await?;
    db.close().await;
    let list: Vec<_> = pending.iter().map(|(v, d)| serde_json::json!({ "version": v, "description": d })).collect();
    if out.json {
        out.print_json(&serde_json::json!({ "pending": list }))?;
    } else if pending.is_empty() {
        println!("the database is up to date");
    } else {
        for (v, d) in &pending {
            println!("would apply {v} {d}");
        }
    }
    match pending.len() {
        0 => Ok(()),
        n => Err(Exit { code: 1, message: format!("{n} migration(s) would run") }.into()),
    }
}

/// Something named that does not exist exits 1, like `not_found`.
pub fn access_error(e: crate::access::AccessError) -> anyhow::Error {
    match e {
        crate::access::AccessError::NotFound(m) => not_found(m),
        e => e.into(),
    }
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let mut cfg = Config::load(cli.config.as_deref())?;
    if let Some(f) = cli.log_format {
        cfg.log_format = match f {
            CliLogFormat::Text => LogFormat::Text,
            CliLogFormat::Json => LogFormat::Json,
        };
    }
    let out = Out { json: cli.json };
    match cli.command {
        Command::Serve => {
            let traces = logging::init(cfg.log_format, &cfg.log_level, Sink::Stdout, Some(&cfg.tracing))?;
            log_warnings(&cfg);
            let result = serve(cfg).await;
            if let Some(t) = traces {
                t.shutdown();
            }
            result
        }
        Command::Healthcheck { url } => healthcheck(&cfg, url).await,
        command => {
            let level = if cfg.log_level == "info" { "warn" } else { cfg.log_level.as_str() };
            logging::init(cfg.log_format, level, Sink::Stderr, None)?;
            log_warnings(&cfg);
            let result = match command {
                Command::Migrate { check: true } => migrate_check(&cfg, &out).await,
                Command::Migrate { check: false } => {
                    let db = crate::startup::open_db(&cfg).await?;
                    // The audit log's table too (it may be a database of its own).
                    auditor(&cfg, &db).await?;
                    out.done("migrations applied", &serde_json::json!({"migrated": true}))
                }
                Command::CheckConfig => check_config(&cfg, &out),
                Command::Keys(k) => keys::run(k, &cfg, &out).await,
                Command::Client(c) => client::run(c, &cfg, &out).await,
                Command::User(u) => user::run(u, &cfg, &out).await,
                Command::Provider(p) => provider::run(p, &cfg, &out).await,
                Command::Api(a) => api::run(a, &cfg, &out).await,
                Command::Role(r) => role::run_role(r, &cfg, &out).await,
                Command::Group(g) => role::run_group(g, &cfg, &out).await,
                Command::Audit(a) => audit::run(a, &cfg, &out).await,
                Command::Admin(a) => admin::run(a, &cfg, &out).await,
                Command::Serve | Command::Healthcheck { .. } => Ok(()),
            };
            if let Some(a) = AUDITOR.get() {
                if result.is_ok() {
                    record_change();
                }
                a.flush().await;
            }
            result
        }
    }
}

fn log_warnings(cfg: &Config) {
    for w in &cfg.warnings {
        tracing::warn!("{w}");
    }
}

async fn serve(cfg: Config) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    let addr = cfg.listen_addr()?;
    let state = AppState::init(cfg, Clock::system()).await?;
    let listener = tokio::net::TcpListener::bind(addr).await.with_context(|| format!("cannot listen on {addr}"))?;
    admin::first_admin_link(&state).await?;
    let bound = listener.local_addr()?;
    tracing::info!(
        addr = %bound,
        issuer = %state.issuer.as_str(),
        startup_ms = started.elapsed().as_millis() as u64,
        "listening"
    );
    app::serve(state, listener, app::shutdown_signal()).await?;
    tracing::info!("stopped");
    Ok(())
}

fn check_config(cfg: &Config, out: &Out) -> anyhow::Result<()> {
    // The providers' secrets too, from their files and variables.
    for i in 0..cfg.providers.len() {
        cfg.provider(i)?;
    }
    let mut cfg = cfg.clone();
    cfg.database_url = crate::config::redact_url(&cfg.database_url());
    let cfg = &cfg;
    if out.json {
        out.print_json(cfg)
    } else {
        // `Secret` serialises masked, so this never prints a secret.
        print!("{}", render_toml_like(&serde_json::to_value(cfg)?, ""));
        Ok(())
    }
}

/// Renders a JSON object as TOML-ish `key = value` lines, tables last.
fn render_toml_like(v: &serde_json::Value, prefix: &str) -> String {
    let mut scalars = String::new();
    let mut tables = String::new();
    if let serde_json::Value::Object(map) = v {
        for (k, val) in map {
            match val {
                serde_json::Value::Object(_) => {
                    let name = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
                    tables.push_str(&format!("\n[{name}]\n{}", render_toml_like(val, &name)));
                }
                _ => scalars.push_str(&format!("{k} = {val}\n")),
            }
        }
    }
    scalars + &tables
}

/// `sesame healthcheck`: a minimal HTTP/1.1 GET, so the container image needs no curl.
async fn healthcheck(cfg: &Config, url: Option<String>) -> anyhow::Result<()> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let url = match url {
        Some(u) => u,
        None => {
            let mut addr = cfg.listen_addr()?;
            if addr.ip().is_unspecified() {
                addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
            }
            format!("http://{addr}{}", crate::health::HEALTHZ)
        }
    };
    let parsed = url::Url::parse(&url).with_context(|| format!("bad --url {url}"))?;
    let host = parsed.host_str().context("--url needs a host")?;
    let port = parsed.port_or_known_default().unwrap_or(80);
    let fail = |m: String| -> anyhow::Error { Exit { code: 1, message: m }.into() };
    let io = async {
        let mut s = tokio::net::TcpStream::connect((host, port)).await?;
        let req = format!("GET {} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n", parsed.path());
        s.write_all(req.as_bytes()).await?;
        let mut buf = Vec::new();
        s.read_to_end(&mut buf).await?;
        Ok::<_, std::io::Error>(buf)
    };
    let buf = tokio::time::timeout(std::time::Duration::from_secs(5), io)
        .await
        .map_err(|_| fail(format!("{url}: timed out")))?
        .map_err(|e| fail(format!("{url}: {e}")))?;
    let head = String::from_utf8_lossy(&buf);
    let status = head.split_whitespace().nth(1).unwrap_or("");
    if status == "200" { Ok(()) } else { Err(fail(format!("{url}: status {status}"))) }
}

/// Output helpers: one place decides between text and JSON.
pub(crate) struct Out {
    pub json: bool,
}

impl Out {
    pub fn print_json<T: Serialize + ?Sized>(&self, v: &T) -> anyhow::Result<()> {
        println!("{}", serde_json::to_string_pretty(v)?);
        Ok(())
    }

    /// Prints `text` for people or `value` as JSON.
    pub fn done<T: Serialize + ?Sized>(&self, text: &str, value: &T) -> anyhow::Result<()> {
        if self.json {
            self.print_json(value)
        } else {
            println!("{text}");
            Ok(())
        }
    }
}

/// The command's audit log, opened with its database: what a command does is
/// recorded with actor `cli`, written before the process exits.
static AUDITOR: std::sync::OnceLock<crate::audit::Auditor> = std::sync::OnceLock::new();

pub(crate) async fn auditor(cfg: &Config, db: &Db) -> anyhow::Result<crate::audit::Auditor> {
    if let Some(a) = AUDITOR.get() {
        return Ok(a.clone());
    }
    let a = crate::audit::Auditor::start(db, cfg, Clock::system()).await?;
    Ok(AUDITOR.get_or_init(|| a).clone())
}

/// Records `event` as done from the command line.
pub(crate) fn record(event: crate::audit::Event) {
    if let Some(a) = AUDITOR.get() {
        a.record(event.actor(crate::audit::ACTOR_CLI));
    }
}

/// Every data command opens (and migrates) the same database the server uses.
pub(crate) async fn open(cfg: &Config) -> anyhow::Result<Db> {
    let db = crate::startup::open_db_for_cli(cfg).await?;
    auditor(cfg, &db).await?;
    // The console's roles, as `sesame serve` makes them at start, when a
    // server has run with this issuer (never an API for a mistyped issuer).
    let api = crate::access::management_audience(&cfg.issuer);
    if crate::storage::apis::find(&db, &api).await?.is_some() {
        crate::access::ensure_console_roles(&db, &cfg.issuer, Clock::system().now()).await.map_err(access_error)?;
    }
    Ok(db)
}

/// `admin_change` for a command that changed something: its words
/// (`user grant-role`) and its first argument (the thing changed). Flags are
/// left out: they may hold a password.
fn record_change() {
    use clap::CommandFactory;
    let Ok(m) = Cli::command().try_get_matches_from(std::env::args_os()) else { return };
    let mut cmd = Cli::command();
    let mut words = Vec::new();
    let mut cur = &m;
    let mut target = None;
    while let Some((name, sub)) = cur.subcommand() {
        words.push(name.to_string());
        let Some(c) = cmd.find_subcommand(name).cloned() else { break };
        target = c
            .get_arguments()
            .find(|a| a.is_positional())
            .and_then(|a| sub.get_raw(a.get_id().as_str()))
            .and_then(|mut v| v.next())
            .map(|v| v.to_string_lossy().to_string())
            .or(target);
        cmd = c;
        cur = sub;
    }
    const READ_ONLY: [&str; 8] = ["list", "show", "check", "sessions", "search", "jwks", "export", "factors"];
    if words.len() < 2 || words.last().is_some_and(|w| READ_ONLY.contains(&w.as_str())) {
        return;
    }
    let mut details = serde_json::json!({ "command": words.join(" ") });
    if let Some(t) = target {
        details["target"] = t.into();
    }
    record(crate::audit::Event::new(crate::audit::Kind::AdminChange).details(details));
}

/// Reads one secret line from stdin, without the trailing newline.
pub(crate) fn read_stdin_line(what: &str) -> anyhow::Result<String> {
    let mut s = String::new();
    std::io::stdin().read_line(&mut s).with_context(|| format!("cannot read {what} from stdin"))?;
    let s = s.trim_end_matches(['\n', '\r']).to_string();
    if s.is_empty() {
        anyhow::bail!("no {what} on stdin");
    }
    Ok(s)
}
