//! `/admin`: the last 24 hours (sign-ins, failures, sign-ups), active
//! sessions, recent failures and recent changes by administrators.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::CookieJar;
use serde::Deserialize;

use super::pages::Overview;
use super::{path, render, run, viewer};
use crate::audit::Kind;
use crate::error::Failure;
use crate::state::AppState;

#[derive(Deserialize, Default)]
pub struct BackQuery {
    /// Back from the login box: the code is not needed, the session is.
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    error: Option<String>,
}

pub async fn get(
    State(state): State<AppState>,
    jar: CookieJar,
    q: Result<Query<BackQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let q = q.map(|Query(q)| q).unwrap_or_default();
    run(&state, async {
        if q.code.is_some() {
            return Ok(Redirect::to(&path(&state, "")).into_response());
        }
        if let Some(e) = q.error {
            let msg = format!("Signing in to the console did not finish ({e}).");
            return Ok(super::message(&state, None, StatusCode::UNAUTHORIZED, &msg));
        }
        let (v, jar) = match viewer(&state, jar).await? {
            Ok(x) => x,
            Err(r) => return Ok(r),
        };
        let now = state.clock.now();
        let kinds = [Kind::LoginSuccess.as_str(), Kind::LoginFailure.as_str(), Kind::Signup.as_str()];
        let counts = crate::storage::audit::counts_since(state.audit.db(), &kinds, (now - 86_400) * 1000)
            .await
            .map_err(Failure::internal)?;
        let count =
            |k: Kind, o: &str| counts.iter().filter(|c| c.0 == k.as_str() && c.1 == o).map(|c| c.2).sum::<i64>();
        let sessions = crate::storage::sessions::count_live(&state.db, now).await.map_err(Failure::internal)?;
        let audit = v.may("read:audit");
        let page = Overview {
            nav: v.nav(&state, "overview"),
            sign_ins: count(Kind::LoginSuccess, "success"),
            failures: count(Kind::LoginFailure, "failure"),
            sign_ups: count(Kind::Signup, "success"),
            sessions,
            changes: if audit { super::log::recent(&state, None, Some(Kind::AdminChange), 10).await? } else { vec![] },
            failed: if audit { super::log::recent(&state, None, Some(Kind::LoginFailure), 10).await? } else { vec![] },
        };
        Ok((jar, render(StatusCode::OK, &page)).into_response())
    })
    .await
}
