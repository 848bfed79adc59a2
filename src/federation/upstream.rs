//! Talking to an upstream: the authorization URL, then the code exchange and
//! the identity behind it. OpenID Connect kinds go through the
//! `openidconnect` crate (ID token signature against the upstream's JWKS,
//! `iss`, `aud`, `azp`, `exp`, `nonce`); OAuth 2.0 kinds through `oauth2`
//! plus the provider's profile call.

use openidconnect::core::{CoreClient, CoreIdTokenVerifier, CoreJwsSigningAlgorithm as Alg};
use openidconnect::{
    AuthType, AuthUrl, AuthorizationCode, ClaimsVerificationError, ClientId, ClientSecret, IssuerUrl, Nonce,
    OAuth2TokenResponse, PkceCodeVerifier, RedirectUrl, RequestTokenError, SignatureVerificationError, TokenUrl,
};
use serde_json::Value;
use url::Url;

use super::claims::{self, Upstream};
use super::presets::TokenAuth;
use super::provider::{Endpoints, Provider, unreachable_or_invalid};
use super::{Failed, Problem};
use crate::config::ProviderKind;

/// What the authorization request carries besides the provider's settings.
pub struct Ask<'a> {
    pub state: &'a str,
    pub nonce: &'a str,
    pub code_challenge: &'a str,
    pub login_hint: Option<&'a str>,
    /// `prompt=login` at Sesame: the upstream must authenticate again too.
    pub reauthenticate: bool,
}

pub fn authorization_url(p: &Provider, ep: &Endpoints, a: &Ask) -> Result<String, Failed> {
    let mut url = Url::parse(&ep.authorization)
        .map_err(|e| Failed::new(Problem::Invalid, format!("authorization endpoint: {e}")))?;
    {
        let mut q = url.query_pairs_mut();
        q.append_pair("response_type", "code")
            .append_pair("client_id", &p.cfg.client_id)
            .append_pair("redirect_uri", &p.callback)
            .append_pair("scope", &p.scopes.join(" "))
            .append_pair("state", a.state)
            .append_pair("code_challenge", a.code_challenge)
            .append_pair("code_challenge_method", "S256");
        if p.kind().is_oidc() {
            q.append_pair("nonce", a.nonce);
        }
        if p.form_post() {
            q.append_pair("response_mode", "form_post");
        }
        if let Some(h) = a.login_hint.filter(|_| p.kind().is_oidc() && p.kind() != ProviderKind::Apple) {
            q.append_pair("login_hint", h);
        }
        if a.reauthenticate {
            match p.kind() {
                // Google documents max_age rather than prompt=login.
                ProviderKind::Google => {
                    q.append_pair("max_age", "0");
                }
                k if k.is_oidc() && k != ProviderKind::Apple => {
                    q.append_pair("prompt", "login");
                }
                _ => {}
            }
        }
        if p.kind() == ProviderKind::Google && p.cfg.allowed_domains.len() == 1 {
            q.append_pair("hd", &p.cfg.allowed_domains[0]);
        }
    }
    Ok(url.into())
}

/// The round trip's answer, as it came back (query or form_post).
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct Answer {
    pub code: Option<String>,
    pub error: Option<String>,
    pub error_description: Option<String>,
    /// Apple's `user` (name and email) on the first authorization only.
    pub user: Option<String>,
}

/// Exchanges the code and returns who signed in.
pub async fn redeem(
    p: &Provider,
    code: &str,
    verifier: &str,
    nonce: &str,
    now: i64,
    answer: &Answer,
) -> Result<Upstream, Failed> {
    let ep = p.endpoints().await?;
    let secret = p.client_secret(now)?;
    let token_url =
        TokenUrl::new(ep.token.clone()).map_err(|e| Failed::new(Problem::Invalid, format!("token endpoint: {e}")))?;
    let auth_url = AuthUrl::new(ep.authorization.clone())
        .map_err(|e| Failed::new(Problem::Invalid, format!("authorization endpoint: {e}")))?;
    let redirect =
        RedirectUrl::new(p.callback.clone()).map_err(|e| Failed::new(Problem::Invalid, format!("callback: {e}")))?;
    let auth_type = match p.token_auth() {
        TokenAuth::Basic => AuthType::BasicAuth,
        TokenAuth::Post => AuthType::RequestBody,
    };
    if p.kind().is_oidc() {
        let issuer = p.issuer().ok_or_else(|| Failed::new(Problem::Invalid, "no issuer"))?;
        let issuer_url =
            IssuerUrl::new(issuer.to_string()).map_err(|e| Failed::new(Problem::Invalid, format!("issuer: {e}")))?;
        let jwks = p.jwks(false).await?;
        let client = CoreClient::new(ClientId::new(p.cfg.client_id.clone()), issuer_url.clone(), (*jwks).clone())
            .set_client_secret(ClientSecret::new(secret.expose().to_string()))
            .set_auth_uri(auth_url)
            .set_token_uri(token_url)
            .set_redirect_uri(redirect)
            .set_auth_type(auth_type);
        let tokens = client
            .exchange_code(AuthorizationCode::new(code.to_string()))
            .set_pkce_verifier(PkceCodeVerifier::new(verifier.to_string()))
            .request_async(&p.http)
            .await
            .map_err(token_error)?;
        let id_token = openidconnect::TokenResponse::id_token(&tokens)
            .ok_or_else(|| Failed::new(Problem::Invalid, "the token response has no id_token"))?;
        let nonce = Nonce::new(nonce.to_string());
        let verify = |jwks: openidconnect::core::CoreJsonWebKeySet| {
            let v = CoreIdTokenVerifier::new_public_client(
                ClientId::new(p.cfg.client_id.clone()),
                issuer_url.clone(),
                jwks,
            )
            .set_allowed_algs([Alg::RsaSsaPkcs1V15Sha256, Alg::EcdsaP256Sha256, Alg::EdDsa, Alg::RsaSsaPssSha256])
            // Microsoft's multi-tenant issuer: checked per tenant below.
            .require_issuer_match(p.kind() != ProviderKind::Microsoft);
            id_token.claims(&v, &nonce).map(|_| ())
        };
        match verify((*jwks).clone()) {
            Ok(()) => {}
            // A key rotated at the upstream: fetch the keys once more.
            Err(ClaimsVerificationError::SignatureVerification(SignatureVerificationError::NoMatchingKey)) => {
                let fresh = p.jwks(true).await?;
                verify((*fresh).clone()).map_err(|e| Failed::new(Problem::Invalid, format!("ID token: {e}")))?;
            }
            Err(e) => return Err(Failed::new(Problem::Invalid, format!("ID token: {e}"))),
        }
        let mut payload = jwt_payload(&id_token.to_string())?;
        if p.kind() == ProviderKind::Microsoft {
            check_tenant_issuer(issuer, &payload)?;
        }
        if let Some(user) = answer.user.as_deref() {
            apple_name(&mut payload, user);
        }
        let u = claims::map(p, &payload)?;
        return Ok(u);
    }
    let client = oauth2::basic::BasicClient::new(oauth2::ClientId::new(p.cfg.client_id.clone()))
        .set_client_secret(oauth2::ClientSecret::new(secret.expose().to_string()))
        .set_auth_uri(
            oauth2::AuthUrl::new(ep.authorization.clone()).map_err(|e| Failed::new(Problem::Invalid, e.to_string()))?,
        )
        .set_token_uri(
            oauth2::TokenUrl::new(ep.token.clone()).map_err(|e| Failed::new(Problem::Invalid, e.to_string()))?,
        )
        .set_redirect_uri(
            oauth2::RedirectUrl::new(p.callback.clone()).map_err(|e| Failed::new(Problem::Invalid, e.to_string()))?,
        )
        .set_auth_type(match p.token_auth() {
            TokenAuth::Basic => oauth2::AuthType::BasicAuth,
            TokenAuth::Post => oauth2::AuthType::RequestBody,
        });
    let tokens = client
        .exchange_code(oauth2::AuthorizationCode::new(code.to_string()))
        .set_pkce_verifier(oauth2::PkceCodeVerifier::new(verifier.to_string()))
        .request_async(&p.http)
        .await
        .map_err(token_error)?;
    let at = tokens.access_token().secret();
    let userinfo = ep.userinfo.as_deref().ok_or_else(|| Failed::new(Problem::Invalid, "no userinfo endpoint"))?;
    let mut profile = p.get_json(userinfo, Some(at)).await?;
    if p.kind() == ProviderKind::Github {
        github_email(p, &mut profile, at).await?;
    }
    claims::map(p, &profile)
}

/// GitHub: the primary address, and only if GitHub verified it; the public
/// profile's `email` is never trusted.
async fn github_email(p: &Provider, profile: &mut Value, at: &str) -> Result<(), Failed> {
    let url = p
        .cfg
        .emails_endpoint
        .clone()
        .or(p.preset.emails_endpoint.map(str::to_string))
        .ok_or_else(|| Failed::new(Problem::Invalid, "no emails endpoint"))?;
    let list = p.get_json(&url, Some(at)).await?;
    let primary = list.as_array().and_then(|a| {
        a.iter().find(|e| e.get("primary") == Some(&Value::Bool(true)) && e.get("verified") == Some(&Value::Bool(true)))
    });
    if let Some(obj) = profile.as_object_mut() {
        match primary.and_then(|e| e.get("email")).and_then(Value::as_str) {
            Some(e) => {
                obj.insert("email".into(), e.into());
                obj.insert("email_verified".into(), true.into());
            }
            None => {
                obj.remove("email");
                obj.insert("email_verified".into(), false.into());
            }
        }
    }
    Ok(())
}

/// Apple posts `user` = {"name": {"firstName", "lastName"}, "email"} on the
/// first authorization only: its name joins the claims (never its email,
/// which the ID token carries signed).
fn apple_name(payload: &mut Value, user: &str) {
    let Ok(u) = serde_json::from_str::<Value>(user) else { return };
    let first = claims::lookup(&u, "name.firstName").and_then(Value::as_str).unwrap_or("");
    let last = claims::lookup(&u, "name.lastName").and_then(Value::as_str).unwrap_or("");
    let name = format!("{first} {last}").trim().to_string();
    if let (false, Some(obj)) = (name.is_empty(), payload.as_object_mut())
        && !obj.contains_key("name")
    {
        obj.insert("name".into(), name.into());
    }
}

/// Microsoft's multi-tenant tokens: `iss` must be the issuer with the
/// token's own tenant (`tid`) in place of `common` / `organizations`.
fn check_tenant_issuer(configured: &str, payload: &Value) -> Result<(), Failed> {
    let iss = payload.get("iss").and_then(Value::as_str).unwrap_or("");
    let tid = payload.get("tid").and_then(Value::as_str).unwrap_or("");
    let expected = ["common", "organizations", "consumers"]
        .iter()
        .find_map(|t| {
            configured.contains(&format!("/{t}/")).then(|| configured.replace(&format!("/{t}/"), &format!("/{tid}/")))
        })
        .unwrap_or_else(|| configured.to_string());
    if tid.is_empty() || iss.trim_end_matches('/') != expected.trim_end_matches('/') {
        return Err(Failed::new(Problem::Invalid, format!("ID token issuer `{iss}` is not `{expected}`")));
    }
    Ok(())
}

/// The payload of a JWT whose signature was already verified.
fn jwt_payload(jwt: &str) -> Result<Value, Failed> {
    use base64::Engine;
    let part = jwt.split('.').nth(1).ok_or_else(|| Failed::new(Problem::Invalid, "ID token is not a JWT"))?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part.trim_end_matches('='))
        .map_err(|e| Failed::new(Problem::Invalid, format!("ID token payload: {e}")))?;
    serde_json::from_slice(&bytes).map_err(|e| Failed::new(Problem::Invalid, format!("ID token payload: {e}")))
}

fn token_error<T: oauth2::ErrorResponse + 'static>(e: RequestTokenError<crate::outbound::OutboundError, T>) -> Failed {
    match e {
        RequestTokenError::Request(r) => unreachable_or_invalid(r, "token endpoint"),
        RequestTokenError::ServerResponse(r) => Failed::new(Problem::Refused, format!("token endpoint: {r}")),
        other => Failed::new(Problem::Invalid, format!("token endpoint: {other}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multi_tenant_issuer_is_checked_per_tenant() {
        let common = "https://login.microsoftonline.com/common/v2.0";
        let tid = "72f988bf-86f1-41af-91ab-2d7cd011db47";
        let good = serde_json::json!({ "iss": format!("https://login.microsoftonline.com/{tid}/v2.0"), "tid": tid });
        assert!(check_tenant_issuer(common, &good).is_ok());
        let other = serde_json::json!({ "iss": "https://login.microsoftonline.com/00000000-0000-0000-0000-000000000000/v2.0", "tid": tid });
        assert!(check_tenant_issuer(common, &other).is_err(), "a token whose iss names another tenant than its tid");
        let none = serde_json::json!({ "iss": "https://login.microsoftonline.com/common/v2.0" });
        assert!(check_tenant_issuer(common, &none).is_err(), "no tid");
        let single = format!("https://login.microsoftonline.com/{tid}/v2.0");
        assert!(check_tenant_issuer(&single, &good).is_ok());
    }

    #[test]
    fn apple_name_joins_the_claims_once() {
        let mut p = serde_json::json!({ "sub": "x" });
        apple_name(&mut p, r#"{"name":{"firstName":"Ada","lastName":"Lovelace"}}"#);
        assert_eq!(p["name"], "Ada Lovelace");
        apple_name(&mut p, "not json");
        assert_eq!(p["name"], "Ada Lovelace");
    }
}
