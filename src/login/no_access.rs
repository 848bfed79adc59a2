//! "You don't have access to this application": shown when the signed-in
//! user may not use a restricted client. The button answers the application
//! with `access_denied`; the session stays, for the applications the user may use.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum_extra::extract::cookie::CookieJar;

use super::handlers::ReqQuery;
use super::pages::NoAccessPage;
use crate::audit::{self, Event, Kind};
use crate::error::{ErrorCode, Failure, OAuthError};
use crate::http::page::{self};
use crate::http::params::Params;
use crate::pending;
use crate::session;
use crate::state::AppState;
use crate::storage::users;

pub async fn get(State(state): State<AppState>, jar: CookieJar, Query(q): Query<ReqQuery>) -> Response {
    let run = async {
        let l = pending::load(&state, &jar, q.req()).await?;
        let account = match session::current(&state, &jar).await.map_err(Failure::internal)? {
            Some(s) => {
                let e = Event::failure(Kind::AccessDenied, "access_rule").user(s.user_id.clone()).sid(&s.sid);
                audit::record(&state.audit, e.client(&l.client.client_id));
                users::find_by_id(&state.db, &s.user_id).await.ok().flatten().map(|u| u.label().to_string())
            }
            None => None,
        };
        let (jar, csrf) = session::ensure_csrf(&state, jar);
        let page = NoAccessPage {
            brand: state.brand.clone(),
            client_name: l.client.name.clone(),
            account: account.unwrap_or_default(),
            action: format!("{}{}", state.issuer.path_prefix(), pending::NO_ACCESS),
            csrf,
            req: l.row.id.clone(),
        };
        Ok::<_, Failure>((jar, page::render(StatusCode::FORBIDDEN, &page)).into_response())
    };
    run.await.unwrap_or_else(|f| f.render(&state.issuer, &state.brand))
}

pub async fn post(State(state): State<AppState>, jar: CookieJar, p: Params) -> Response {
    let run = async {
        super::handlers::check_csrf(&state, &jar, &p)?;
        let l = pending::load(&state, &jar, p.first("req").unwrap_or("")).await?;
        pending::finish(&state, &l.row.id).await;
        Err::<Response, _>(pending::fail(
            &l,
            OAuthError::new(ErrorCode::AccessDenied, "the user may not use this application"),
        ))
    };
    run.await.unwrap_or_else(|f| f.render(&state.issuer, &state.brand))
}
