//! OpenID Connect Back-Channel Logout 1.0: when a session ends, every client
//! that used it and registered a `backchannel_logout_uri` receives a signed
//! `logout_token` by POST. Delivery runs in the background with a timeout and
//! bounded retries, so a slow or dead application never delays the user.

use std::time::Duration;

use serde_json::json;

use crate::crypto::random;
use crate::domain::Client;
use crate::state::AppState;

const ATTEMPTS: u32 = 3;

/// Starts delivery to the clients of an ended session and returns at once.
pub fn notify(state: &AppState, sid: String, user_id: String, client_ids: Vec<String>) {
    let state = state.clone();
    tokio::spawn(async move { deliver_all(&state, &sid, &user_id, &client_ids).await });
}

/// Delivers to every client of an ended session that registered a URI, in
/// parallel, and returns when all have answered or given up (the CLI waits).
pub async fn deliver_all(state: &AppState, sid: &str, user_id: &str, client_ids: &[String]) {
    let mut set = tokio::task::JoinSet::new();
    for id in client_ids {
        let client = match state.client(id).await {
            Ok(Some(c)) if c.backchannel_logout_uri.is_some() => c,
            _ => continue,
        };
        let state = state.clone();
        let (sid, user_id) = (sid.to_string(), user_id.to_string());
        set.spawn(async move { deliver(&state, &client, &sid, &user_id).await });
    }
    set.join_all().await;
}

/// The `logout_token` for one client: `typ: logout+jwt`, the logout event, `sid`
/// and `sub`, never a `nonce` (Back-Channel Logout §2.4).
pub fn logout_token(state: &AppState, client: &Client, sid: &str, sub: &str, now: i64) -> anyhow::Result<String> {
    let claims = json!({
        "iss": state.issuer.as_str(),
        "aud": client.client_id,
        "iat": now,
        "exp": now + 120,
        "jti": random::token(16),
        "sid": sid,
        "sub": sub,
        "events": { "http://schemas.openid.net/event/backchannel-logout": {} },
    });
    Ok(state.keys.snapshot().sign(super::tokens::alg_for(state, client), "logout+jwt", &claims, now)?)
}

async fn deliver(state: &AppState, client: &Client, sid: &str, sub: &str) {
    let Some(uri) = &client.backchannel_logout_uri else { return };
    let token = match logout_token(state, client, sid, sub, state.clock.now()) {
        Ok(t) => t,
        Err(e) => {
            tracing::error!(error = %e, client_id = %client.client_id, "cannot sign logout token");
            return;
        }
    };
    for attempt in 1..=ATTEMPTS {
        let sent = state.http.send(state.http.post(uri).form(&[("logout_token", token.as_str())])).await;
        match sent {
            Ok(r) if r.status.is_success() => {
                tracing::info!(client_id = %client.client_id, sid, attempt, "back-channel logout delivered");
                return;
            }
            Ok(r) => {
                tracing::warn!(client_id = %client.client_id, status = %r.status, attempt, "back-channel logout refused")
            }
            Err(e) => tracing::warn!(client_id = %client.client_id, error = %e, attempt, "back-channel logout failed"),
        }
        if attempt < ATTEMPTS {
            tokio::time::sleep(Duration::from_secs(u64::from(attempt))).await;
        }
    }
    tracing::warn!(client_id = %client.client_id, sid, "back-channel logout gave up");
}

/// Ends every session of `user_id` without its browsers (codes and
/// non-offline refresh tokens with them; `revoke_all`: offline ones too),
/// delivers the back-channel logouts, and records `session_ended` for each
/// with who did it and why. The browsers get their front-channel logout on
/// their next visit. Returns how many sessions ended.
pub async fn end_user_sessions(
    state: &AppState,
    user_id: &str,
    revoke_all: bool,
    actor: &str,
    reason: &str,
) -> Result<usize, crate::storage::StorageError> {
    let ended = crate::accounts::end_sessions(&state.db, user_id, revoke_all, state.clock.now()).await?;
    for s in &ended {
        session_ended(state, user_id, &s.sid, actor, reason);
        deliver_all(state, &s.sid, user_id, &s.client_ids).await;
    }
    Ok(ended.len())
}

/// Ends one session of a user the same way.
pub async fn end_one_session(
    state: &AppState,
    s: &crate::storage::sessions::SessionRow,
    actor: &str,
    reason: &str,
) -> Result<(), crate::storage::StorageError> {
    let clients = crate::storage::sessions::end_remotely(&state.db, s, state.clock.now()).await?;
    session_ended(state, &s.user_id, &s.sid, actor, reason);
    deliver_all(state, &s.sid, &s.user_id, &clients).await;
    Ok(())
}

fn session_ended(state: &AppState, user_id: &str, sid: &str, actor: &str, reason: &str) {
    use crate::audit::{Event, Kind};
    let e = Event::new(Kind::SessionEnded).user(user_id).sid(sid).actor(actor);
    crate::audit::record(&state.audit, e.details(json!({ "why": reason })));
}
