//! The admin console (`/admin`): users and their history, the log,
//! applications, APIs, roles, groups, providers and signing keys, in
//! server-rendered pages. It signs in through the login box as the built-in
//! client `sesame-console` (as the account page does), and every operation
//! goes through `manage`, the service the management API uses, with the
//! signed-in user as the actor: what they may do is the management API's
//! permissions their roles carry (`sesame-admin`: all; `sesame-support`:
//! reading). Every change is an `admin_change` event naming them.

mod apis;
mod apps;
mod directory;
mod log;
mod overview;
mod pages;
pub mod setup;
mod system;
mod users;

use axum::Router;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum_extra::extract::cookie::CookieJar;

use crate::audit::{self, Event, Kind};
use crate::crypto::random;
use crate::domain::User;
use crate::error::Failure;
use crate::manage::{Admin, OpError};
use crate::session;
use crate::state::AppState;
use crate::storage::sessions::SessionRow;
use pages::{Message, Nav};

pub use crate::clients::{CONSOLE_CLIENT_ID, CONSOLE_PAGE};
pub use setup::create_link;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(CONSOLE_PAGE, get(overview::get))
        .route("/admin/users", get(users::list))
        .route("/admin/users/{id}", get(users::page))
        .route("/admin/users/{id}/{action}", post(users::act))
        .route("/admin/log", get(log::page))
        .route("/admin/log/feed", get(log::feed))
        .route("/admin/apps", get(apps::list).post(apps::create))
        .route("/admin/apps/new", get(apps::new))
        .route("/admin/apps/{id}", get(apps::page).post(apps::save))
        .route("/admin/apps/{id}/{action}", post(apps::act))
        .route("/admin/apis", get(apis::apis).post(apis::create_api))
        .route("/admin/api", get(apis::api).post(apis::save_api))
        .route("/admin/roles", get(directory::roles).post(directory::create_role))
        .route("/admin/roles/{name}", get(directory::role).post(directory::save_role))
        .route("/admin/groups", get(directory::groups).post(directory::create_group))
        .route("/admin/groups/{name}", get(directory::group).post(directory::save_group))
        .route("/admin/providers", get(system::providers))
        .route("/admin/providers/{id}/check", post(system::check))
        .route("/admin/keys", get(system::keys).post(system::rotate))
        .route("/admin/sign-out", post(sign_out))
        .route(setup::SETUP, get(setup::get).post(setup::post))
        .route("/static/{version}/admin.css", get(admin_css))
        .route("/static/{version}/admin.js", get(admin_js))
}

/// The signed-in administrator: their account, session and permissions,
/// and the CSRF token their forms carry.
pub struct Viewer {
    pub user: User,
    pub session: SessionRow,
    pub admin: Admin,
    pub csrf: String,
}

impl Viewer {
    pub fn may(&self, permission: &str) -> bool {
        self.admin.may(permission)
    }

    fn nav(&self, state: &AppState, here: &'static str) -> Nav {
        Nav {
            brand: state.brand.clone(),
            base: path(state, ""),
            here,
            who: self.user.email.clone().unwrap_or_else(|| self.user.user_id.clone()),
            account: format!("{}{}", state.issuer.path_prefix(), crate::clients::ACCOUNT_PAGE),
            csrf: self.csrf.clone(),
        }
    }
}

/// `/admin{rest}` under the issuer's path.
pub fn path(state: &AppState, rest: &str) -> String {
    format!("{}{CONSOLE_PAGE}{rest}", state.issuer.path_prefix())
}

pub fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// The management permissions `user_id` holds through their roles.
pub async fn permissions_of(state: &AppState, user_id: &str) -> Result<Vec<String>, crate::storage::StorageError> {
    let aud = crate::access::management_audience(state.issuer.as_str());
    Ok(crate::storage::roles::access_of(&state.db, user_id, Some(&aud)).await?.permissions)
}

/// The viewer, or where to send the browser instead: the login box (no
/// session; `[admin] require_mfa` and no second factor in this session),
/// or a page saying the console is not theirs.
async fn viewer(state: &AppState, jar: CookieJar) -> Result<Result<(Viewer, CookieJar), Response>, Failure> {
    let s = session::current(state, &jar).await.map_err(Failure::internal)?;
    let Some(s) = s else { return Ok(Err(Redirect::to(&sign_in_url(state, None)).into_response())) };
    let user = crate::storage::users::find_by_id(&state.db, &s.user_id).await.map_err(Failure::internal)?;
    let Some(user) = user.filter(|u| !u.disabled) else {
        return Ok(Err(Redirect::to(&sign_in_url(state, None)).into_response()));
    };
    let permissions = permissions_of(state, &user.user_id).await.map_err(Failure::internal)?;
    if permissions.is_empty() {
        let account = format!("{}{}", state.issuer.path_prefix(), crate::clients::ACCOUNT_PAGE);
        return Ok(Err(crate::http::page::notice(
            &state.brand,
            StatusCode::FORBIDDEN,
            "No access to the console",
            "Your account has no administrator or support role. Ask an administrator for one.",
            Some((account, "Your account".into())),
        )));
    }
    if state.config.admin.require_mfa && s.mfa_at.is_none() {
        return Ok(Err(Redirect::to(&sign_in_url(state, Some(crate::mfa::policy::ACR_MFA))).into_response()));
    }
    let (jar, csrf) = session::ensure_csrf(state, jar);
    let admin = Admin::user(&user.user_id, permissions);
    Ok(Ok((Viewer { user, session: s, admin, csrf }, jar)))
}

/// The viewer, when they may `need`; otherwise the page saying so.
pub(super) async fn reader(
    state: &AppState,
    jar: CookieJar,
    need: &str,
) -> Result<Result<(Viewer, CookieJar), Response>, Failure> {
    match viewer(state, jar).await? {
        Ok((v, jar)) if v.may(need) => Ok(Ok((v, jar))),
        Ok((v, _)) => {
            let msg = format!("This page needs the `{need}` permission.");
            Ok(Err(message(state, Some(&v), StatusCode::FORBIDDEN, &msg)))
        }
        Err(r) => Ok(Err(r)),
    }
}

/// The viewer of a form post (its CSRF token checked), or the response.
async fn poster(
    state: &AppState,
    jar: CookieJar,
    p: &crate::http::params::Params,
) -> Result<Result<(Viewer, CookieJar), Response>, Failure> {
    if session::check_csrf(state, &jar, p.first("csrf")).is_none() {
        return Ok(Err(message(state, None, StatusCode::FORBIDDEN, "This form has expired. Open the page again.")));
    }
    viewer(state, jar).await
}

/// `/authorize` for the console's client (PKCE with a verifier nobody keeps:
/// the code is never redeemed, the session is what counts); `acr` asks for
/// a second factor in this session.
fn sign_in_url(state: &AppState, acr: Option<&str>) -> String {
    use base64::Engine;
    use sha2::Digest;
    let verifier = random::token(32);
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier.as_bytes()));
    let mut q = url::form_urlencoded::Serializer::new(String::new());
    q.append_pair("client_id", CONSOLE_CLIENT_ID)
        .append_pair("response_type", "code")
        .append_pair("redirect_uri", &format!("{}{CONSOLE_PAGE}", state.issuer.as_str().trim_end_matches('/')))
        .append_pair("scope", "openid")
        .append_pair("state", &random::token(8))
        .append_pair("code_challenge", &challenge)
        .append_pair("code_challenge_method", "S256");
    if let Some(acr) = acr {
        q.append_pair("acr_values", acr);
    }
    format!("{}/authorize?{}", state.issuer.path_prefix(), q.finish())
}

/// Signs the viewer out: their session ends (every application's
/// back-channel logout with it), then the landing page.
async fn sign_out(
    axum::extract::State(state): axum::extract::State<AppState>,
    jar: CookieJar,
    p: crate::http::params::Params,
) -> Response {
    run(&state, async {
        let (v, _jar) = match poster(&state, jar, &p).await? {
            Ok(x) => x,
            Err(r) => return Ok(r),
        };
        state.logouts.end_one_session(&v.session, &v.admin.actor, "signed_out").await.map_err(Failure::internal)?;
        Ok(Redirect::to(&format!("{}/", state.issuer.path_prefix())).into_response())
    })
    .await
}

/// An `admin_change` event: the viewer as actor, the user changed (so it is
/// in that user's history), what was done.
fn changed(state: &AppState, v: &Viewer, operation: &str, target: Option<&User>, details: serde_json::Value) {
    let mut e = Event::new(Kind::AdminChange).actor(&v.admin.actor);
    if let Some(u) = target {
        e = e.account(u);
    }
    let mut d = serde_json::json!({ "operation": operation, "via": "console" });
    if let (Some(o), Some(extra)) = (d.as_object_mut(), details.as_object()) {
        o.extend(extra.clone());
    }
    audit::record(&state.audit, e.details(d));
}

/// A page of the console saying one thing (a refusal, an error).
fn message(state: &AppState, v: Option<&Viewer>, status: StatusCode, text: &str) -> Response {
    let nav = match v {
        Some(v) => v.nav(state, ""),
        None => Nav::anonymous(state),
    };
    let back = path(state, "");
    render(status, &Message { nav, title: title_for(status).into(), text: text.into(), back })
}

fn title_for(status: StatusCode) -> &'static str {
    match status {
        StatusCode::FORBIDDEN => "Not allowed",
        StatusCode::NOT_FOUND => "Not found",
        StatusCode::CONFLICT => "Not possible",
        _ => "That did not work",
    }
}

/// An operation's refusal as a page: its status and its words. Storage
/// failures go to the error page (503 while the database is away).
fn refused(state: &AppState, v: &Viewer, e: OpError) -> Result<Response, Failure> {
    let (status, text) = match e {
        OpError::Invalid(m) => (StatusCode::BAD_REQUEST, m),
        OpError::NotFound(m) => (StatusCode::NOT_FOUND, m),
        OpError::Conflict(m) => (StatusCode::CONFLICT, m),
        OpError::Forbidden(m) => {
            // A change the viewer may not make is worth knowing about.
            let e = Event::failure(Kind::AdminChange, "forbidden").actor(&v.admin.actor);
            audit::record(&state.audit, e.details(serde_json::json!({ "via": "console", "refusal": m })));
            (StatusCode::FORBIDDEN, m)
        }
        OpError::Storage(s) => return Err(Failure::internal(s)),
        OpError::Internal(m) => return Err(Failure::internal(anyhow::anyhow!(m))),
    };
    Ok(message(state, Some(v), status, &text))
}

/// The notice for `?done=CODE` on the list and settings pages: fixed words,
/// so a link cannot put its own sentence on a console page.
pub fn done_notice(code: Option<&str>) -> Option<String> {
    let words = match code? {
        "registered" => "Registered. Every replica uses it within database.client_cache_secs (5 seconds by default).",
        "created" => "Created.",
        "saved" => "Saved.",
        "deleted" => "Deleted.",
        "rotated" => "New keys were made: they sign once every replica has seen them.",
        _ => return None,
    };
    Some(words.to_string())
}

/// Back to `to` with a code for the notice (`?done=`).
fn done(state: &AppState, to: &str, what: &str) -> Response {
    let sep = if to.contains('?') { '&' } else { '?' };
    Redirect::to(&format!("{}{sep}done={}", path(state, to), urlencode(what))).into_response()
}

/// A console page: the strict CSP with the console's own script, no framing,
/// no caching.
fn render<T: askama::Template>(status: StatusCode, t: &T) -> Response {
    crate::http::page::render_scripted(status, t)
}

const ADMIN_CSS: &str = include_str!("../../static/admin.css");
const ADMIN_JS: &str = include_str!("../../static/admin.js");

fn asset(body: &'static str, kind: &'static str) -> Response {
    let mut r = body.into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=31536000, immutable"));
    r
}

async fn admin_css() -> Response {
    asset(ADMIN_CSS, "text/css; charset=utf-8")
}

async fn admin_js() -> Response {
    asset(ADMIN_JS, "text/javascript; charset=utf-8")
}

/// Runs a page handler: a `Failure` becomes the error page.
async fn run<F>(state: &AppState, f: F) -> Response
where
    F: std::future::Future<Output = Result<Response, Failure>>,
{
    f.await.unwrap_or_else(|e| e.render(&state.issuer, &state.brand))
}

/// A time as the console shows it: words ("3 minutes ago") with the exact
/// instant for the viewer's script to put in their own time zone.
#[derive(Clone)]
pub struct When {
    pub words: String,
    pub iso: String,
}

impl When {
    pub fn at(ts: i64, now: i64) -> When {
        When { words: crate::domain::ago(ts, now), iso: iso(ts * 1000) }
    }

    pub fn at_ms(ms: i64, now: i64) -> When {
        When { words: crate::domain::ago(ms / 1000, now), iso: iso(ms) }
    }
}

fn iso(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_default()
}
