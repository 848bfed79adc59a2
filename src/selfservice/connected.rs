//! `/account`'s actions on what is connected to the account: end a session,
//! unlink a provider identity or link another, withdraw a consent.

use axum::extract::State;
use axum::response::{IntoResponse, Redirect, Response};

use super::account::{AccountForm, account_params, back, end_others, fresh};
use super::{ACCOUNT, ACCOUNT_CLIENT_ID, with_req};
use crate::audit::{self, Event, Kind};
use crate::error::Failure;
use crate::http::params::Params;
use crate::session;
use crate::state::AppState;
use crate::storage::sessions;
use crate::storage::{consents, refresh_tokens};

pub async fn end_session(State(state): State<AppState>, f: AccountForm) -> Response {
    let run = async {
        let AccountForm { session: s, user, jar, p } = f;
        let actor = format!("user:{}", user.user_id);
        let sid = p.first("sid").unwrap_or("");
        if sid == "others" {
            end_others(&state, &user, &s, &actor, "account_page").await?;
            state.factors().forget_browsers(&user.user_id).await.map_err(Failure::internal)?;
            return Ok(back(&state, "done", "sessions"));
        }
        let all = sessions::list_for_user(&state.db, &user.user_id).await.map_err(Failure::internal)?;
        if let Some(target) = all.into_iter().find(|x| x.sid == sid) {
            state.logouts.end_one_session(&target, &actor, "account_page").await.map_err(Failure::internal)?;
            if target.sid == s.sid {
                // This browser's own session: signed out here too.
                let jar = session::remove_cookies(&state, jar);
                return Ok((jar, Redirect::to(&with_req(&state, ACCOUNT, None))).into_response());
            }
        }
        Ok::<_, Failure>(back(&state, "done", "session"))
    };
    run.await.unwrap_or_else(|f| f.render(&state.issuer, &state.brand))
}

pub async fn unlink(State(state): State<AppState>, f: AccountForm) -> Response {
    let run = async {
        let AccountForm { session: s, user, p, .. } = f;
        if let Err(code) = super::factors::gate(&state, &s, &user).await? {
            return Ok(back(&state, "error", code));
        }
        let provider = p.first("provider").unwrap_or("");
        let subject = p.first("subject").unwrap_or("");
        match crate::accounts::unlink(&state.db, &user, provider, Some(subject)).await {
            Ok(_) => {
                let e = Event::new(Kind::IdentityUnlinked).account(&user).method(provider.to_string());
                audit::record(&state.audit, e.actor(format!("user:{}", user.user_id)));
                Ok(back(&state, "done", "unlinked"))
            }
            Err(crate::accounts::UnlinkError::LastWayIn) => Ok(back(&state, "error", "last_way_in")),
            Err(crate::accounts::UnlinkError::NotLinked) => Ok(back(&state, "done", "unlinked")),
            Err(crate::accounts::UnlinkError::Storage(e)) => Err(Failure::internal(e)),
        }
    };
    run.await.unwrap_or_else(|f: Failure| f.render(&state.issuer, &state.brand))
}

pub async fn revoke_consent(State(state): State<AppState>, f: AccountForm) -> Response {
    let run = async {
        let AccountForm { user, p, .. } = f;
        let client_id = p.first("client_id").unwrap_or("");
        if consents::delete(&state.db, &user.user_id, client_id).await.map_err(Failure::internal)? {
            let now = state.clock.now();
            refresh_tokens::revoke_for_user_client(&state.db, &user.user_id, client_id, now)
                .await
                .map_err(Failure::internal)?;
            let e = Event::new(Kind::ConsentRevoked).account(&user).client(client_id);
            audit::record(&state.audit, e.actor(format!("user:{}", user.user_id)));
        }
        Ok::<_, Failure>(back(&state, "done", "consent"))
    };
    run.await.unwrap_or_else(|f| f.render(&state.issuer, &state.brand))
}

/// "Link" a provider: a round trip to it whose identity joins this account.
pub async fn link(State(state): State<AppState>, f: AccountForm) -> Response {
    let run = async {
        let AccountForm { session: s, user, jar, p } = f;
        // Linking adds a way in: only right after a sign-in (with the second
        // factor, for an account that has one).
        if !fresh(&state, &s) {
            return Ok(back(&state, "error", "reauth"));
        }
        if let Err(code) = super::factors::gate(&state, &s, &user).await? {
            return Ok(back(&state, "error", code));
        }
        let provider = p.first("provider").unwrap_or("");
        let Some(provider) = state.federation.enabled().find(|x| x.id() == provider).map(|x| x.id().to_string()) else {
            return Ok(back(&state, "error", "provider"));
        };
        let client = state
            .client(ACCOUNT_CLIENT_ID)
            .await
            .map_err(Failure::internal)?
            .ok_or_else(|| Failure::internal(anyhow::anyhow!("the account client is missing")))?;
        let req = crate::oidc::request::validate(&Params::from_pairs(account_params(&state)), &client)?;
        let csrf = session::csrf_value(&state, &jar).unwrap_or_default();
        let id = crate::pending::park_for_linking(&state, &req, &csrf, &user.user_id).await?;
        Ok::<_, Failure>(Redirect::to(&crate::federation::start_url(&state.issuer, &provider, &id)).into_response())
    };
    run.await.unwrap_or_else(|f| f.render(&state.issuer, &state.brand))
}
