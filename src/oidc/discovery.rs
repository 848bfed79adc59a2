//! `GET /.well-known/openid-configuration`. Lists exactly what is implemented.

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::request::{PROMPTS, SUPPORTED_SCOPES};
use super::{AUTHORIZE, CHECK_SESSION, END_SESSION, INTROSPECT, JWKS, REVOKE, TOKEN, USERINFO};
use crate::config::SigningAlg;
use crate::state::AppState;

/// The document, serialised once when the routes are built: it depends only
/// on the issuer, so a request costs a copy of a reference, not a JSON build.
#[derive(Clone)]
pub struct Cached(axum::body::Bytes);

impl Cached {
    pub fn new(state: &AppState) -> Cached {
        Cached(serde_json::to_vec(&document(state)).unwrap_or_default().into())
    }

    pub fn response(&self) -> Response {
        let headers = [
            (header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=300")),
            (header::CONTENT_TYPE, HeaderValue::from_static("application/json")),
        ];
        (headers, self.0.clone()).into_response()
    }
}

pub fn document(state: &AppState) -> Value {
    let iss = &state.issuer;
    let algs: Vec<&str> = SigningAlg::ALL.iter().map(|a| a.as_str()).collect();
    let auth_methods = ["client_secret_basic", "client_secret_post", "none"];
    json!({
        "issuer": iss.as_str(),
        "authorization_endpoint": iss.endpoint(AUTHORIZE),
        "token_endpoint": iss.endpoint(TOKEN),
        "userinfo_endpoint": iss.endpoint(USERINFO),
        "jwks_uri": iss.endpoint(JWKS),
        "revocation_endpoint": iss.endpoint(REVOKE),
        "introspection_endpoint": iss.endpoint(INTROSPECT),
        "end_session_endpoint": iss.endpoint(END_SESSION),
        "check_session_iframe": iss.endpoint(CHECK_SESSION),
        "scopes_supported": SUPPORTED_SCOPES,
        "response_types_supported": ["code", "id_token", "id_token token"],
        "response_modes_supported": ["query", "fragment", "form_post", "web_message"],
        "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials", "implicit"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": algs,
        "userinfo_signing_alg_values_supported": ["none"],
        "token_endpoint_auth_methods_supported": auth_methods,
        "revocation_endpoint_auth_methods_supported": auth_methods,
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "code_challenge_methods_supported": ["S256"],
        "dpop_signing_alg_values_supported": super::dpop::ALGS,
        "prompt_values_supported": PROMPTS,
        "claims_supported": [
            "iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "azp", "at_hash", "sid", "amr", "acr",
            "name", "updated_at", "email", "email_verified"
        ],
        "acr_values_supported": crate::mfa::policy::ACR_VALUES,
        "claims_parameter_supported": false,
        "request_parameter_supported": false,
        "request_uri_parameter_supported": false,
        "authorization_response_iss_parameter_supported": true,
        "backchannel_logout_supported": true,
        "backchannel_logout_session_supported": true,
        "frontchannel_logout_supported": true,
        "frontchannel_logout_session_supported": true,
    })
}
