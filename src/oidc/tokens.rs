//! The tokens Sesame signs: access tokens (RFC 9068 JWTs) and ID tokens
//! (OIDC Core §2), and verification of the ones it receives back.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256, Sha512};

use crate::config::SigningAlg;
use crate::crypto::random;
use crate::domain::{Client, User};
use crate::oidc::audience::Entitled;
use crate::state::AppState;

/// The algorithm a client's tokens are signed with.
pub fn alg_for(state: &AppState, client: &Client) -> SigningAlg {
    client.signing_alg(state.config.keys.default_id_token_alg)
}

#[derive(Debug, Serialize, Deserialize)]
pub struct AccessClaims {
    pub iss: String,
    pub sub: String,
    pub aud: String,
    pub exp: i64,
    pub iat: i64,
    pub jti: String,
    pub client_id: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub scope: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_time: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    /// The grant this token came from; revoking the grant makes it inactive at
    /// userinfo and introspection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gid: Option<String>,
    /// Every permission the token's user (or client) holds on its API.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permissions: Option<Vec<String>>,
    /// The DPoP key the token is bound to (RFC 9449 §6.1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cnf: Option<Confirmation>,
    /// Roles and groups, under their configured claim names.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// `cnf`: the SHA-256 thumbprint of the key a DPoP-bound token needs.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Confirmation {
    pub jkt: String,
}

pub struct AccessInput<'a> {
    pub sub: &'a str,
    pub scope: &'a str,
    pub auth_time: Option<i64>,
    pub sid: Option<&'a str>,
    pub gid: Option<&'a str>,
    /// The API, its permissions, roles and groups (default: the client itself).
    pub ent: &'a Entitled,
    /// The DPoP key the token is bound to.
    pub jkt: Option<&'a str>,
}

/// Roles and groups under the configured claim names.
fn rbac_claims(state: &AppState, ent: &Entitled) -> serde_json::Map<String, serde_json::Value> {
    let mut m = serde_json::Map::new();
    if let Some(r) = &ent.roles {
        m.insert(state.config.tokens.roles_claim.clone(), r.clone().into());
    }
    if let Some(g) = &ent.groups {
        m.insert(state.config.tokens.groups_claim.clone(), g.clone().into());
    }
    m
}

pub fn access_token(state: &AppState, client: &Client, input: AccessInput, now: i64) -> anyhow::Result<String> {
    let ent = input.ent;
    let ttl = ent.ttl.unwrap_or(state.config.tokens.access_token_ttl_secs);
    let claims = AccessClaims {
        iss: state.issuer.as_str().to_string(),
        sub: input.sub.to_string(),
        aud: ent.aud.clone().unwrap_or_else(|| client.client_id.clone()),
        exp: now + ttl as i64,
        iat: now,
        jti: random::token(16),
        client_id: client.client_id.clone(),
        scope: input.scope.to_string(),
        auth_time: input.auth_time,
        sid: input.sid.map(str::to_string),
        gid: input.gid.map(str::to_string),
        permissions: ent.permissions.clone(),
        cnf: input.jkt.map(|j| Confirmation { jkt: j.to_string() }),
        extra: rbac_claims(state, ent),
    };
    let alg = ent.alg.unwrap_or_else(|| alg_for(state, client));
    Ok(state.keys.snapshot().sign(alg, "at+jwt", &claims, now)?)
}

pub struct IdInput<'a> {
    pub user: &'a User,
    pub scopes: &'a [String],
    pub nonce: Option<&'a str>,
    pub auth_time: i64,
    pub sid: Option<&'a str>,
    pub amr: &'a [String],
    /// The upstream provider the session was started with (`idp` claim).
    pub idp: Option<&'a str>,
    pub acr: Option<&'a str>,
    pub access_token: Option<&'a str>,
    /// Roles and groups when the scope asked for them.
    pub ent: Option<&'a Entitled>,
}

pub fn id_token(state: &AppState, client: &Client, input: IdInput, now: i64) -> anyhow::Result<String> {
    let alg = alg_for(state, client);
    let mut c = serde_json::json!({
        "iss": state.issuer.as_str(),
        "sub": input.user.user_id,
        "aud": client.client_id,
        "azp": client.client_id,
        "exp": now + state.config.tokens.id_token_ttl_secs as i64,
        "iat": now,
        "auth_time": input.auth_time,
    });
    let obj = c.as_object_mut().ok_or_else(|| anyhow::anyhow!("claims"))?;
    if let Some(n) = input.nonce {
        obj.insert("nonce".into(), n.into());
    }
    if let Some(s) = input.sid {
        obj.insert("sid".into(), s.into());
    }
    if !input.amr.is_empty() {
        obj.insert("amr".into(), input.amr.into());
    }
    if let Some(p) = input.idp {
        obj.insert("idp".into(), p.into());
    }
    if let Some(a) = input.acr {
        obj.insert("acr".into(), a.into());
    }
    if let Some(at) = input.access_token {
        obj.insert("at_hash".into(), at_hash(alg, at).into());
    }
    for (k, v) in profile_claims(input.user, input.scopes) {
        obj.insert(k.into(), v);
    }
    if let Some(e) = input.ent {
        obj.extend(rbac_claims(state, e));
    }
    Ok(state.keys.snapshot().sign(alg, "JWT", &c, now)?)
}

/// Claims released per scope (OIDC Core §5.4).
pub fn profile_claims(user: &User, scopes: &[String]) -> Vec<(&'static str, serde_json::Value)> {
    let mut out = Vec::new();
    if scopes.iter().any(|s| s == "profile") {
        if let Some(n) = &user.name {
            out.push(("name", n.clone().into()));
        }
        if let Some(p) = &user.picture {
            out.push(("picture", p.clone().into()));
        }
        out.push(("updated_at", user.updated_at.into()));
    }
    if scopes.iter().any(|s| s == "email")
        && let Some(e) = &user.email
    {
        out.push(("email", e.clone().into()));
        out.push(("email_verified", user.email_verified.into()));
    }
    out
}

/// Left half of the hash of the access token, base64url (OIDC Core §3.1.3.6).
/// The hash follows the signing algorithm: SHA-256 for RS256/ES256, SHA-512
/// for Ed25519 (as RPs implement EdDSA).
pub fn at_hash(alg: SigningAlg, token: &str) -> String {
    use base64::Engine;
    let digest: Vec<u8> = match alg {
        SigningAlg::EdDSA => Sha512::digest(token.as_bytes()).to_vec(),
        _ => Sha256::digest(token.as_bytes()).to_vec(),
    };
    let half = digest.get(..digest.len() / 2).unwrap_or_default();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(half)
}

/// Verifies one of our access tokens: signature, issuer, `typ`, expiry.
pub fn verify_access_token(state: &AppState, token: &str) -> Option<AccessClaims> {
    let now = state.clock.now();
    let set = state.keys.snapshot();
    let (claims, typ): (AccessClaims, _) =
        set.verify(token, state.issuer.as_str(), None, now, state.keys.max_token_ttl()).ok()?;
    let typ_ok = typ.is_some_and(|t| t.eq_ignore_ascii_case("at+jwt") || t.eq_ignore_ascii_case("application/at+jwt"));
    (typ_ok && claims.exp > now).then_some(claims)
}

#[derive(Deserialize)]
struct HintClaims {
    sub: String,
    aud: serde_json::Value,
}

/// The claims of an ID token we signed. Access tokens (`at+jwt`, which every
/// API sees) and logout tokens (`logout+jwt`) are not ID tokens: an ID token
/// carries `typ` `JWT` or none.
fn hint_claims(state: &AppState, token: &str) -> Option<HintClaims> {
    let now = state.clock.now();
    let set = state.keys.snapshot();
    let (c, typ): (HintClaims, _) =
        set.verify(token, state.issuer.as_str(), None, now, state.keys.max_token_ttl()).ok()?;
    match typ.as_deref() {
        None => Some(c),
        Some(t) if t.eq_ignore_ascii_case("JWT") => Some(c),
        Some(_) => None,
    }
}

/// What logout needs from an `id_token_hint`.
pub struct IdTokenHint {
    pub sub: String,
    pub aud: Vec<String>,
}

/// Verifies an ID token we issued (expiry ignored) and returns its subject and audiences.
pub fn id_token_hint_claims(state: &AppState, token: &str) -> Option<IdTokenHint> {
    let c = hint_claims(state, token)?;
    let aud = match c.aud {
        serde_json::Value::String(a) => vec![a],
        serde_json::Value::Array(v) => v.into_iter().filter_map(|a| a.as_str().map(str::to_string)).collect(),
        _ => return None,
    };
    Some(IdTokenHint { sub: c.sub, aud })
}

/// The `sub` of an ID token we issued to `client_id`; expiry is ignored, as
/// OIDC allows for hints.
pub fn id_token_hint_subject(state: &AppState, token: &str, client_id: &str) -> Option<String> {
    let c = hint_claims(state, token)?;
    let aud_ok = match &c.aud {
        serde_json::Value::String(a) => a == client_id,
        serde_json::Value::Array(v) => v.iter().any(|a| a == client_id),
        _ => false,
    };
    aud_ok.then_some(c.sub)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_hash_known_answer() {
        // Expected value computed independently (Python hashlib + base64url of the left 16 bytes).
        assert_eq!(at_hash(SigningAlg::RS256, "jHkWEdUXMU1BwAsC4vtUsZwnNR5nHDNYJmrRLaVwQ4Q"), "SDAPVaTtfApJEGo9XQTWhw");
        assert_eq!(at_hash(SigningAlg::EdDSA, "x").len(), 43);
    }
}
