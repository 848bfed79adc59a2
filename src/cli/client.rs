//! `sesame client`: register and manage applications.

use anyhow::{anyhow, bail};
use serde_json::json;

pub use super::client_args::ClientCmd;
use super::client_args::UpdateArgs;
use super::{Out, not_found};
use crate::access::AccessError;
use crate::clients;
use crate::config::Config;
use crate::crypto::random::sha256_hex;
use crate::domain::{Client, Clock};
use crate::storage::{StorageError, clients as store};

pub async fn run(cmd: ClientCmd, cfg: &Config, out: &Out) -> anyhow::Result<()> {
    let db = super::open(cfg).await?;
    let https = cfg.issuer_url()?.scheme() == "https";
    let now = Clock::system().now();
    match cmd {
        ClientCmd::Add(a) => {
            let mut spec = a.spec;
            spec.introspect_any &= !a.no_introspect_any;
            spec.rbac_claims &= !a.no_rbac_claims;
            spec.require_mfa &= !a.no_require_mfa;
            spec.require_dpop &= !a.no_require_dpop;
            spec.cross_origin_authentication &= !a.no_cross_origin_authentication;
            if !a.management_scope.is_empty() && !spec.grant_types.iter().any(|g| g == "client_credentials") {
                spec.grant_types.push("client_credentials".into());
            }
            let access = clients::take_access(&mut spec);
            let v = clients::validate(spec, https, now).map_err(|e| anyhow!(e))?;
            warn_all(&v.warnings);
            let mut client = v.client;
            let secret = match (client.public, a.secret_stdin) {
                (true, true) => bail!("a public client has no secret"),
                (true, false) => None,
                (false, true) => Some(read_secret()?),
                (false, false) => Some(clients::new_secret()),
            };
            client.secret_hash = secret.as_deref().map(sha256_hex);
            clients::register(&db, &mut client, access, now).await.map_err(|e| match e {
                AccessError::Storage(StorageError::Conflict(_)) => {
                    anyhow!("client `{}` already exists", client.client_id)
                }
                e => super::access_error(e),
            })?;
            management_grant(cfg, &db, &mut client, a.management_scope, now).await?;
            print_created(out, &client, secret.as_deref())
        }
        ClientCmd::List => {
            let list = store::list(&db).await?;
            if out.json {
                return out.print_json(&list);
            }
            println!("{:<24} {:<12} {:<7} NAME", "CLIENT_ID", "TYPE", "SOURCE");
            for c in list {
                let kind = if c.public { "public" } else { "confidential" };
                println!("{:<24} {:<12} {:<7} {}", c.client_id, kind, c.source, c.name);
            }
            Ok(())
        }
        ClientCmd::Show { client_id } => {
            let c = find(&db, &client_id).await?;
            let grants = crate::storage::apis::client_grants(&db, &c.client_id).await?;
            if out.json {
                let mut v = serde_json::to_value(&c)?;
                let apis: Vec<_> = grants.iter().map(|(a, p)| json!({ "api": a, "permissions": p })).collect();
                v["apis"] = json!(apis);
                return out.print_json(&v);
            }
            print_client(&c)?;
            for (a, p) in grants {
                println!("api: {a} {}", p.join(" "));
            }
            Ok(())
        }
        ClientCmd::Update(u) => update(cfg, &db, u, https, now, out).await,
        ClientCmd::Remove { client_id } => {
            let c = find(&db, &client_id).await?;
            refuse_static(&c)?;
            // Grants first: a client added again under this id starts with none.
            crate::storage::apis::delete_client_grants(&db, &client_id).await?;
            store::delete(&db, &client_id).await?;
            out.done(&format!("removed {client_id}"), &json!({ "removed": client_id }))
        }
    }
}

async fn update(
    cfg: &Config,
    db: &crate::storage::Db,
    u: UpdateArgs,
    https: bool,
    now: i64,
    out: &Out,
) -> anyhow::Result<()> {
    let old = find(db, &u.client_id).await?;
    refuse_static(&old)?;
    let pick = |new: Vec<String>, old: Vec<String>| if new.is_empty() { old } else { new };
    let flag = |on: bool, off: bool, old: bool| {
        if on {
            true
        } else if off {
            false
        } else {
            old
        }
    };
    let mut spec = clients::spec_of(&old);
    spec.name = u.name.unwrap_or(spec.name);
    spec.first_party = flag(u.first_party, u.no_first_party, spec.first_party);
    spec.redirect_uris = pick(u.lists.redirect_uris, spec.redirect_uris);
    spec.post_logout_redirect_uris = pick(u.lists.post_logout_redirect_uris, spec.post_logout_redirect_uris);
    spec.web_origins = pick(u.lists.web_origins, spec.web_origins);
    spec.grant_types = pick(u.lists.grant_types, spec.grant_types);
    if !u.more.management_scope.is_empty() && !spec.grant_types.iter().any(|x| x == "client_credentials") {
        spec.grant_types.push("client_credentials".into());
    }
    spec.id_token_alg = u.id_token_alg.or(spec.id_token_alg);
    spec.token_endpoint_auth_method = u.token_endpoint_auth_method.or(spec.token_endpoint_auth_method);
    spec.backchannel_logout_uri = u.more.backchannel_logout_uri.or(spec.backchannel_logout_uri);
    spec.frontchannel_logout_uri = u.more.frontchannel_logout_uri.or(spec.frontchannel_logout_uri);
    spec.refresh_leeway_secs = u.more.refresh_leeway.or(spec.refresh_leeway_secs);
    spec.introspect_any = flag(u.more.introspect_any, u.more.no_introspect_any, spec.introspect_any);
    spec.rbac_claims = flag(u.more.rbac_claims, u.more.no_rbac_claims, spec.rbac_claims);
    spec.require_mfa = flag(u.more.require_mfa, u.more.no_require_mfa, spec.require_mfa);
    spec.require_dpop = flag(u.more.require_dpop, u.more.no_require_dpop, spec.require_dpop);
    spec.cross_origin_loc = u.more.cross_origin_loc.or(spec.cross_origin_loc);
    spec.cross_origin_authentication = flag(
        u.more.cross_origin_authentication,
        u.more.no_cross_origin_authentication,
        spec.cross_origin_authentication,
    );
    let v = clients::validate(spec, https, now).map_err(|e| anyhow!(e))?;
    warn_all(&v.warnings);
    let mut client = Client { secret_hash: old.secret_hash.clone(), created_at: old.created_at, ..v.client };
    let new_secret = if old.public && (u.rotate_secret || u.secret_stdin) {
        bail!("a public client has no secret");
    } else if u.rotate_secret {
        Some(clients::new_secret())
    } else if u.secret_stdin {
        Some(read_secret()?)
    } else {
        None
    };
    if let Some(s) = &new_secret {
        client.secret_hash = Some(sha256_hex(s));
    }
    store::update(db, &client).await?;
    let a = u.access;
    let change = crate::access::ClientAccessChange {
        require_roles: if a.no_access_restriction {
            Some(vec![])
        } else {
            (!a.require_roles.is_empty()).then_some(a.require_roles)
        },
        require_groups: if a.no_access_restriction {
            Some(vec![])
        } else {
            (!a.require_groups.is_empty()).then_some(a.require_groups)
        },
        default_audience: if a.no_default_audience { Some(None) } else { a.default_audience.map(Some) },
        grant: a.api.map(|api| (api, a.permissions)),
        remove_api: a.remove_api,
    };
    crate::access::change_client_access(db, &mut client, change, now).await.map_err(super::access_error)?;
    management_grant(cfg, db, &mut client, u.more.management_scope, now).await?;
    match new_secret {
        Some(s) => print_created(out, &client, Some(&s)),
        None if out.json => out.print_json(&client),
        None => print_client(&client),
    }
}

/// `--management-scope`: the built-in management API's permissions.
async fn management_grant(
    cfg: &Config,
    db: &crate::storage::Db,
    client: &mut Client,
    perms: Vec<String>,
    now: i64,
) -> anyhow::Result<()> {
    if perms.is_empty() {
        return Ok(());
    }
    crate::access::ensure_management_api(db, &cfg.issuer, now).await.map_err(super::access_error)?;
    let change = crate::access::ClientAccessChange {
        grant: Some((crate::access::management_audience(&cfg.issuer), perms)),
        ..Default::default()
    };
    crate::access::change_client_access(db, client, change, now).await.map_err(super::access_error)
}

async fn find(db: &crate::storage::Db, id: &str) -> anyhow::Result<Client> {
    store::find(db, id).await?.ok_or_else(|| not_found(format!("no client `{id}`")))
}

fn refuse_static(c: &Client) -> anyhow::Result<()> {
    if c.source == "config" {
        bail!("client `{}` is declared in the config file; change it there", c.client_id);
    }
    Ok(())
}

fn read_secret() -> anyhow::Result<String> {
    let s = super::read_stdin_line("client secret")?;
    if s.len() < 16 {
        bail!("a client secret must be at least 16 characters");
    }
    Ok(s)
}

fn warn_all(warnings: &[String]) {
    for w in warnings {
        eprintln!("warning: {w}");
    }
}

fn print_created(out: &Out, c: &Client, secret: Option<&str>) -> anyhow::Result<()> {
    if out.json {
        let mut v = serde_json::to_value(c)?;
        if let (Some(s), Some(obj)) = (secret, v.as_object_mut()) {
            obj.insert("client_secret".into(), json!(s));
        }
        return out.print_json(&v);
    }
    print_client(c)?;
    if let Some(s) = secret {
        println!("client_secret: {s}\n(shown once; Sesame stores only its hash)");
    }
    Ok(())
}

fn print_client(c: &Client) -> anyhow::Result<()> {
    println!("client_id: {}", c.client_id);
    println!("name: {}", c.name);
    println!("type: {}", if c.public { "public" } else { "confidential" });
    println!("first_party: {}", c.first_party);
    println!("token_endpoint_auth_method: {}", c.token_endpoint_auth_method);
    println!("grant_types: {}", c.grant_types.join(" "));
    println!("redirect_uris: {}", c.redirect_uris.join(" "));
    println!("post_logout_redirect_uris: {}", c.post_logout_redirect_uris.join(" "));
    println!("web_origins: {}", c.web_origins.join(" "));
    if let Some(a) = c.id_token_alg {
        println!("id_token_alg: {a}");
    }
    if let Some(u) = &c.backchannel_logout_uri {
        println!("backchannel_logout_uri: {u}");
    }
    if let Some(u) = &c.frontchannel_logout_uri {
        println!("frontchannel_logout_uri: {u}");
    }
    if let Some(l) = c.refresh_leeway_secs {
        println!("refresh_leeway_secs: {l}");
    }
    println!("introspect_any: {}", c.introspect_any);
    if c.is_restricted() {
        println!("require_roles: {}", c.require_roles.join(" "));
        println!("require_groups: {}", c.require_groups.join(" "));
    }
    if let Some(a) = &c.default_audience {
        println!("default_audience: {a}");
    }
    println!("source: {}", c.source);
    Ok(())
}
