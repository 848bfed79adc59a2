//! Ending sessions, and OpenID Connect Back-Channel Logout 1.0: when a
//! session ends, every client that used it and registered a
//! `backchannel_logout_uri` receives a signed `logout_token` by POST.
//! Delivery runs in the background with a timeout and bounded retries, so a
//! slow or dead application never delays the user. A service: the logout
//! endpoint, the account page, the management API, a proven mailbox and the
//! CLI end sessions through the same `Logouts`.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use crate::audit::Auditor;
use crate::cache::ClientCache;
use crate::config::SigningAlg;
use crate::crypto::keys::KeyRing;
use crate::crypto::random;
use crate::domain::{Client, Clock};
use crate::issuer::Issuer;
use crate::outbound::Outbound;
use crate::storage::Db;

const ATTEMPTS: u32 = 3;

/// The handles ending a session needs (`AppState::logouts`).
#[derive(Clone)]
pub struct Logouts {
    pub db: Db,
    pub clock: Clock,
    pub clients: Arc<ClientCache>,
    pub keys: KeyRing,
    pub issuer: Arc<Issuer>,
    /// Back-channel calls: bounded read, short timeout, no redirects.
    pub http: Outbound,
    pub audit: Auditor,
    /// Logout tokens are signed like the client's ID tokens.
    pub default_alg: SigningAlg,
}

impl Logouts {
    /// Starts delivery to the clients of an ended session and returns at once.
    pub fn notify(&self, sid: String, user_id: String, client_ids: Vec<String>) {
        let this = self.clone();
        tokio::spawn(async move { this.deliver_all(&sid, &user_id, &client_ids).await });
    }

    /// Delivers to every client of an ended session that registered a URI, in
    /// parallel, and returns when all have answered or given up (the CLI waits).
    pub async fn deliver_all(&self, sid: &str, user_id: &str, client_ids: &[String]) {
        let mut set = tokio::task::JoinSet::new();
        for id in client_ids {
            let client = match self.clients.get(&self.db, id, self.clock.now()).await {
                Ok(Some(c)) if c.backchannel_logout_uri.is_some() => c,
                _ => continue,
            };
            let this = self.clone();
            let (sid, user_id) = (sid.to_string(), user_id.to_string());
            set.spawn(async move { this.deliver(&client, &sid, &user_id).await });
        }
        set.join_all().await;
    }

    /// The `logout_token` for one client: `typ: logout+jwt`, the logout event, `sid`
    /// and `sub`, never a `nonce` (Back-Channel Logout §2.4).
    pub fn logout_token(&self, client: &Client, sid: &str, sub: &str, now: i64) -> anyhow::Result<String> {
        let claims = json!({
            "iss": self.issuer.as_str(),
            "aud": client.client_id,
            "iat": now,
            "exp": now + 120,
            "jti": random::token(16),
            "sid": sid,
            "sub": sub,
            "events": { "http://schemas.openid.net/event/backchannel-logout": {} },
        });
        Ok(self.keys.snapshot().sign(client.signing_alg(self.default_alg), "logout+jwt", &claims, now)?)
    }

    async fn deliver(&self, client: &Client, sid: &str, sub: &str) {
        let Some(uri) = &client.backchannel_logout_uri else { return };
        let token = match self.logout_token(client, sid, sub, self.clock.now()) {
            Ok(t) => t,
            Err(e) => {
                tracing::error!(error = %e, client_id = %client.client_id, "cannot sign logout token");
                return;
            }
        };
        for attempt in 1..=ATTEMPTS {
            let sent = self.http.send(self.http.post(uri).form(&[("logout_token", token.as_str())])).await;
            match sent {
                Ok(r) if r.status.is_success() => {
                    tracing::info!(client_id = %client.client_id, sid, attempt, "back-channel logout delivered");
                    return;
                }
                Ok(r) => {
                    tracing::warn!(client_id = %client.client_id, status = %r.status, attempt, "back-channel logout refused")
                }
                Err(e) => {
                    tracing::warn!(client_id = %client.client_id, error = %e, attempt, "back-channel logout failed")
                }
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
        &self,
        user_id: &str,
        revoke_all: bool,
        actor: &str,
        reason: &str,
    ) -> Result<usize, crate::storage::StorageError> {
        let ended = crate::accounts::end_sessions(&self.db, user_id, revoke_all, self.clock.now()).await?;
        for s in &ended {
            self.session_ended(user_id, &s.sid, actor, reason);
            self.deliver_all(&s.sid, user_id, &s.client_ids).await;
        }
        Ok(ended.len())
    }

    /// Ends one session of a user the same way.
    pub async fn end_one_session(
        &self,
        s: &crate::storage::sessions::SessionRow,
        actor: &str,
        reason: &str,
    ) -> Result<(), crate::storage::StorageError> {
        let clients = crate::storage::sessions::end_remotely(&self.db, s, self.clock.now()).await?;
        self.session_ended(&s.user_id, &s.sid, actor, reason);
        self.deliver_all(&s.sid, &s.user_id, &clients).await;
        Ok(())
    }

    fn session_ended(&self, user_id: &str, sid: &str, actor: &str, reason: &str) {
        use crate::audit::{Event, Kind};
        let e = Event::new(Kind::SessionEnded).user(user_id).sid(sid).actor(actor);
        crate::audit::record(&self.audit, e.details(json!({ "why": reason })));
    }
}
