//! Validation of an /authorize request, as an ordered list of small checks.
//! Until the client and its redirect_uri are verified, errors are shown as a
//! page and never redirected (an open redirector otherwise); after that they go
//! back to the client with `error`, `error_description`, `state` and `iss`.

use serde::{Deserialize, Serialize};

use crate::domain::Client;
use crate::error::{ErrorCode, Failure, OAuthError};
use crate::http::params::Params;

pub const SUPPORTED_SCOPES: [&str; 6] = ["openid", "profile", "email", "offline_access", "roles", "groups"];
/// At most this many API permissions may be asked for in one request.
pub const MAX_API_SCOPES: usize = 64;
pub const PROMPTS: [&str; 4] = ["none", "login", "consent", "select_account"];

pub use super::response::{ResponseMode, Target};

/// `code`, or the implicit `id_token` / `id_token token` (web_message and
/// fragment only, for clients registered with the implicit grant).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResponseType {
    #[default]
    Code,
    IdToken,
    IdTokenToken,
}

/// A validated request, stored server-side while the user is on the login box.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AuthRequest {
    pub client_id: String,
    #[serde(default)]
    pub response_type: ResponseType,
    pub target: Target,
    pub scopes: Vec<String>,
    pub nonce: Option<String>,
    pub code_challenge: Option<String>,
    pub prompt: Vec<String>,
    pub max_age: Option<i64>,
    pub login_hint: Option<String>,
    pub id_token_hint: Option<String>,
    pub ui_locales: Option<String>,
    pub acr_values: Option<String>,
    /// An upstream provider to go to at once, skipping the login box (Auth0's `connection`).
    #[serde(default)]
    pub connection: Option<String>,
    /// The API the access token is for (Auth0's `audience`, RFC 8707 `resource`).
    #[serde(default)]
    pub audience: Option<String>,
    /// Requested scopes that are not OpenID Connect's: API permissions, kept
    /// once `/authorize` has checked them against the API.
    #[serde(default)]
    pub api_scopes: Vec<String>,
    /// The DPoP key the code is bound to (RFC 9449 §10): its thumbprint.
    #[serde(default)]
    pub dpop_jkt: Option<String>,
}

impl AuthRequest {
    pub fn prompt(&self, p: &str) -> bool {
        self.prompt.iter().any(|x| x == p)
    }
    pub fn scope_string(&self) -> String {
        self.scopes.join(" ")
    }
}

/// A request that cannot be trusted with a redirect: Sesame's error page.
fn page(msg: String) -> Failure {
    Failure::page(OAuthError::invalid_request(msg))
}

/// The longest value any /authorize parameter may have ...
pub const MAX_VALUE_LEN: usize = 2048;
/// ... except `id_token_hint`, a signed JWT.
pub const MAX_ID_TOKEN_HINT_LEN: usize = 16 * 1024;

fn max_len(name: &str) -> usize {
    if name == "id_token_hint" { MAX_ID_TOKEN_HINT_LEN } else { MAX_VALUE_LEN }
}

/// Every parameter this endpoint reads; each may appear at most once.
const NAMES: [&str; 22] = [
    "client_id",
    "redirect_uri",
    "response_type",
    "response_mode",
    "scope",
    "state",
    "nonce",
    "code_challenge",
    "code_challenge_method",
    "prompt",
    "max_age",
    "login_hint",
    "id_token_hint",
    "ui_locales",
    "acr_values",
    "connection",
    "audience",
    "resource",
    "request",
    "request_uri",
    "dpop_jkt",
    "login_ticket",
];

/// Step 1: which client, and whether it exists (looked up by the caller).
pub fn client_id(p: &Params) -> Result<&str, Failure> {
    match p.get("client_id") {
        // Client ids are at most 128 characters: a longer one is no client.
        Ok(Some(id)) if id.len() > 128 => Err(page("The application is not registered here.".into())),
        Ok(Some(id)) => Ok(id),
        Ok(None) => Err(page("The request has no client_id.".into())),
        Err(_) => Err(page("The request repeats client_id.".into())),
    }
}

/// Steps 2 onwards, for a known client.
pub fn validate(p: &Params, client: &Client) -> Result<AuthRequest, Failure> {
    let implicit = p.first("response_type").is_some_and(|t| t.split(' ').any(|x| x == "id_token" || x == "token"));
    let mode = match p.get("response_mode") {
        Ok(None) if implicit => ResponseMode::Fragment,
        Ok(Some("fragment")) => ResponseMode::Fragment,
        Ok(Some("form_post")) => ResponseMode::FormPost,
        Ok(Some("web_message")) => ResponseMode::WebMessage,
        _ => ResponseMode::Query,
    };
    let (redirect_uri, web_origin) = if mode == ResponseMode::WebMessage {
        check_web_message_origin(p, client)?
    } else {
        (check_redirect_uri(p, client)?, None)
    };
    // From here on the redirect_uri is trusted; errors go back to it.
    let too_long = p.oversized(max_len);
    let state = p.first("state").filter(|s| s.len() <= MAX_VALUE_LEN).map(str::to_string);
    let frame_ancestors = if web_origin.is_some() {
        let mut v = client.web_origins.clone();
        if let Some(o) = &web_origin
            && !v.contains(o)
        {
            v.push(o.clone());
        }
        v
    } else {
        Vec::new()
    };
    let redirect_uri_sent = p.first("redirect_uri").is_some();
    let target = Target { redirect_uri, redirect_uri_sent, mode, state, web_origin, frame_ancestors };
    let fail = |e: OAuthError| Failure::redirect(&target, e);
    // Every value is bounded, so a pending request stays a small row.
    if let Some(name) = too_long {
        let limit = max_len(name);
        return Err(fail(OAuthError::invalid_request(format!("parameter `{name}` is longer than {limit} bytes"))));
    }
    if let Some(d) = p.first_duplicate(&NAMES) {
        return Err(fail(OAuthError::invalid_request(format!("parameter `{}` is repeated", d.0))));
    }
    check_response_mode(p).map_err(fail)?;
    if p.first("request").is_some() {
        return Err(fail(OAuthError::new(ErrorCode::RequestNotSupported, "request objects are not supported")));
    }
    if p.first("request_uri").is_some() {
        return Err(fail(OAuthError::new(ErrorCode::RequestUriNotSupported, "request_uri is not supported")));
    }
    let response_type = check_response_type(p, client, mode).map_err(fail)?;
    let scopes = check_scope(p).map_err(fail)?;
    let code_challenge = if response_type == ResponseType::Code { check_pkce(p, client).map_err(fail)? } else { None };
    if response_type != ResponseType::Code && p.first("nonce").is_none() {
        return Err(fail(OAuthError::invalid_request("nonce is required for implicit responses")));
    }
    let prompt = check_prompt(p).map_err(fail)?;
    let max_age = check_max_age(p).map_err(fail)?;
    let dpop_jkt = check_dpop_jkt(p, client, response_type).map_err(fail)?;
    Ok(AuthRequest {
        client_id: client.client_id.clone(),
        response_type,
        target: target.clone(),
        scopes,
        nonce: p.first("nonce").map(str::to_string),
        code_challenge,
        prompt,
        max_age,
        login_hint: p.first("login_hint").map(str::to_string),
        id_token_hint: p.first("id_token_hint").map(str::to_string),
        ui_locales: p.first("ui_locales").map(str::to_string),
        acr_values: p.first("acr_values").map(str::to_string),
        connection: p.first("connection").map(str::to_string),
        audience: audience(p).map_err(fail)?,
        api_scopes: api_scopes(p),
        dpop_jkt,
    })
}

/// `dpop_jkt` is a SHA-256 thumbprint (43 base64url characters), for codes
/// only; a client that requires DPoP gets no access token by the front channel.
fn check_dpop_jkt(p: &Params, client: &Client, rt: ResponseType) -> Result<Option<String>, OAuthError> {
    if client.require_dpop && rt == ResponseType::IdTokenToken {
        return Err(OAuthError::unauthorized_client("this client's access tokens are DPoP-bound: use the code flow"));
    }
    match p.first("dpop_jkt") {
        None => Ok(None),
        Some(_) if rt != ResponseType::Code => Err(OAuthError::invalid_request("dpop_jkt binds a code")),
        Some(j) if j.len() == 43 && j.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') => {
            Ok(Some(j.to_string()))
        }
        Some(_) => Err(OAuthError::invalid_request("dpop_jkt is not a JWK SHA-256 thumbprint")),
    }
}

/// Exact, byte-for-byte match against the registered list; may be omitted only
/// when exactly one is registered.
fn check_redirect_uri(p: &Params, client: &Client) -> Result<String, Failure> {
    match p.get("redirect_uri") {
        Err(_) => Err(page("The request repeats redirect_uri.".into())),
        Ok(Some(uri)) if client.redirect_uris.iter().any(|r| r == uri) => Ok(uri.to_string()),
        Ok(Some(_)) => Err(page(format!(
            "The redirect_uri is not registered for the application \u{201c}{}\u{201d}.",
            client.name
        ))),
        Ok(None) => match client.redirect_uris.as_slice() {
            [only] => Ok(only.clone()),
            [] => Err(page("This application has no redirect URI registered.".into())),
            _ => Err(page("The request has no redirect_uri, and the application registered several.".into())),
        },
    }
}

/// web_message never navigates to redirect_uri; it only names the window
/// origin to post to. That origin must be registered: as a web origin of the
/// client, or as the origin of one of its exact redirect URIs.
fn check_web_message_origin(p: &Params, client: &Client) -> Result<(String, Option<String>), Failure> {
    let uri = match p.get("redirect_uri") {
        Err(_) => return Err(page("The request repeats redirect_uri.".into())),
        Ok(Some(u)) => u.to_string(),
        Ok(None) => check_redirect_uri(p, client)?,
    };
    let origin =
        url::Url::parse(&uri).ok().map(|u| u.origin()).filter(|o| o.is_tuple()).map(|o| o.ascii_serialization());
    let registered = |o: &String| client.web_origins.contains(o) || client.redirect_uris.iter().any(|r| r == &uri);
    match origin {
        Some(o) if registered(&o) => Ok((uri, Some(o))),
        _ => Err(page(format!(
            "The origin of redirect_uri is not registered for the application \u{201c}{}\u{201d}.",
            client.name
        ))),
    }
}

fn check_response_mode(p: &Params) -> Result<(), OAuthError> {
    match p.first("response_mode") {
        None | Some("query" | "fragment" | "form_post" | "web_message") => Ok(()),
        Some(m) => Err(OAuthError::invalid_request(format!("unsupported response_mode `{m}`"))),
    }
}

fn check_response_type(p: &Params, client: &Client, mode: ResponseMode) -> Result<ResponseType, OAuthError> {
    let Some(raw) = p.first("response_type") else {
        return Err(OAuthError::invalid_request("response_type is required"));
    };
    let mut parts: Vec<&str> = raw.split(' ').filter(|s| !s.is_empty()).collect();
    parts.sort_unstable();
    let has = |g: &str| client.grant_types.iter().any(|x| x == g);
    let t = match parts.as_slice() {
        ["code"] => ResponseType::Code,
        ["id_token"] => ResponseType::IdToken,
        ["id_token", "token"] => ResponseType::IdTokenToken,
        _ => {
            return Err(OAuthError::new(
                ErrorCode::UnsupportedResponseType,
                format!("response_type `{raw}` is not supported"),
            ));
        }
    };
    match t {
        ResponseType::Code if has("authorization_code") => Ok(t),
        ResponseType::Code => {
            Err(OAuthError::unauthorized_client("this client may not use the authorization code flow"))
        }
        _ if !has("implicit") => Err(OAuthError::unauthorized_client(
            "this client may not use implicit responses (register it with --grant-type implicit; code + PKCE is preferred)",
        )),
        // An ID token alone may be posted (OpenID Form Post Response Mode:
        // nonce-bound, never in a URL), as express-openid-connect asks by default.
        ResponseType::IdToken if mode == ResponseMode::FormPost => Ok(t),
        _ if !matches!(mode, ResponseMode::Fragment | ResponseMode::WebMessage) => Err(OAuthError::invalid_request(
            "implicit responses use response_mode fragment or web_message (an ID token alone may also use form_post)",
        )),
        _ => Ok(t),
    }
}

/// Auth0's `audience` or RFC 8707's `resource`: one API per request.
pub fn audience(p: &Params) -> Result<Option<String>, OAuthError> {
    let a = p.get("audience").map_err(|_| OAuthError::invalid_request("audience may appear once"))?;
    let r = p.get("resource").map_err(|_| OAuthError::new(ErrorCode::InvalidTarget, "one resource per request"))?;
    match (a, r) {
        (Some(a), Some(r)) if a != r => {
            Err(OAuthError::new(ErrorCode::InvalidTarget, "audience and resource name different APIs"))
        }
        (Some(x), _) | (None, Some(x)) if !x.is_empty() => Ok(Some(x.to_string())),
        _ => Ok(None),
    }
}

/// Requested scopes beyond OpenID Connect's (API permissions), in order, bounded.
pub fn api_scopes(p: &Params) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for s in p.first("scope").unwrap_or("").split(' ').filter(|s| !s.is_empty() && !SUPPORTED_SCOPES.contains(s)) {
        if out.len() < MAX_API_SCOPES && !out.iter().any(|x| x == s) {
            out.push(s.to_string());
        }
    }
    out
}

/// Known scopes are kept in a stable order; unknown ones are dropped (RFC 6749
/// §3.3 lets the server grant less than asked); the token response says what was granted.
fn check_scope(p: &Params) -> Result<Vec<String>, OAuthError> {
    let asked: Vec<&str> = p.first("scope").unwrap_or("").split(' ').filter(|s| !s.is_empty()).collect();
    if asked.iter().any(|s| s.chars().any(|c| c.is_control() || c == '"' || c == '\\')) {
        return Err(OAuthError::invalid_scope("scope contains characters RFC 6749 does not allow"));
    }
    Ok(SUPPORTED_SCOPES.iter().filter(|s| asked.contains(s)).map(|s| s.to_string()).collect())
}

/// S256 only; required for public clients (RFC 9700 §2.1.1).
fn check_pkce(p: &Params, client: &Client) -> Result<Option<String>, OAuthError> {
    let challenge = p.first("code_challenge");
    let method = p.first("code_challenge_method");
    match (challenge, method) {
        (None, None) if client.public => {
            Err(OAuthError::invalid_request("public clients must use PKCE (code_challenge with S256)"))
        }
        (None, None) => Ok(None),
        (None, Some(_)) => Err(OAuthError::invalid_request("code_challenge_method without code_challenge")),
        (Some(_), None | Some("plain")) => {
            Err(OAuthError::invalid_request("code_challenge_method must be S256 (plain is not allowed)"))
        }
        (Some(c), Some("S256")) => {
            let ok = c.len() == 43 && c.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
            if ok {
                Ok(Some(c.to_string()))
            } else {
                Err(OAuthError::invalid_request("code_challenge must be a base64url SHA-256 (43 characters)"))
            }
        }
        (Some(_), Some(m)) => Err(OAuthError::invalid_request(format!("unsupported code_challenge_method `{m}`"))),
    }
}

fn check_prompt(p: &Params) -> Result<Vec<String>, OAuthError> {
    let values: Vec<String> =
        p.first("prompt").unwrap_or("").split(' ').filter(|s| !s.is_empty()).map(str::to_string).collect();
    if let Some(v) = values.iter().find(|v| !PROMPTS.contains(&v.as_str())) {
        return Err(OAuthError::invalid_request(format!("unsupported prompt value `{v}`")));
    }
    if values.iter().any(|v| v == "none") && values.len() > 1 {
        return Err(OAuthError::invalid_request("prompt=none cannot be combined with other values"));
    }
    Ok(values)
}

fn check_max_age(p: &Params) -> Result<Option<i64>, OAuthError> {
    match p.first("max_age") {
        None => Ok(None),
        Some(s) => s
            .parse::<i64>()
            .ok()
            .filter(|n| *n >= 0)
            .map(Some)
            .ok_or_else(|| OAuthError::invalid_request("max_age must be a non-negative integer")),
    }
}
