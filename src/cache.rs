//! A short-lived, per-replica cache of client records. Clients are read on
//! every token and authorize request but change rarely; caching them for a few
//! seconds (`database.client_cache_secs`) takes a database round trip off the
//! hot path. A change made with `sesame client` reaches every replica within
//! that time. Only clients that exist are cached, so the map is bounded by the
//! number of registered clients. While the database is unavailable, an
//! expired entry is served rather than nothing.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use crate::domain::Client;
use crate::storage::{Db, StorageError, clients};

#[derive(Default)]
pub struct ClientCache {
    ttl: i64,
    map: RwLock<HashMap<String, (i64, Arc<Client>)>>,
    builtin: Vec<Arc<Client>>,
}

impl ClientCache {
    pub fn new(ttl_secs: u64) -> ClientCache {
        ClientCache { ttl: ttl_secs as i64, map: RwLock::default(), builtin: Vec::new() }
    }

    /// A client that lives in the binary, not the database (the account
    /// page's `sesame-account`, the console's `sesame-console`): answered
    /// without a query, never listed.
    pub fn with_builtin(mut self, c: Client) -> ClientCache {
        self.builtin.push(Arc::new(c));
        self
    }

    pub async fn get(&self, db: &Db, client_id: &str, now: i64) -> Result<Option<Arc<Client>>, StorageError> {
        if let Some(b) = self.builtin.iter().find(|b| b.client_id == client_id) {
            return Ok(Some(b.clone()));
        }
        if self.ttl > 0
            && let Ok(map) = self.map.read()
            && let Some((expires, c)) = map.get(client_id)
            && *expires > now
        {
            return Ok(Some(c.clone()));
        }
        let found = match clients::find(db, client_id).await {
            Ok(found) => found.map(Arc::new),
            // While the database is away, a client seen before is served stale,
            // so /authorize can still answer through its response mode.
            Err(e) if e.is_unavailable() => match self.map.read().ok().and_then(|m| m.get(client_id).cloned()) {
                Some((_, c)) => {
                    tracing::warn!(client_id, "database unavailable; serving the cached client");
                    return Ok(Some(c));
                }
                None => return Err(e),
            },
            Err(e) => return Err(e),
        };
        if self.ttl > 0
            && let (Some(c), Ok(mut map)) = (&found, self.map.write())
        {
            map.insert(client_id.to_string(), (now + self.ttl, c.clone()));
        }
        Ok(found)
    }
}
/// Whether any role requires a second factor, per replica, for as long as a
/// client is cached: while none does (the common case) a session without a
/// second factor costs no query to find out that its user holds no such
/// role. A role changed with `sesame role update` counts on every replica
/// within that time.
#[derive(Default)]
pub struct RoleRuleCache {
    ttl: i64,
    seen: RwLock<Option<(i64, bool)>>,
}

impl RoleRuleCache {
    pub fn new(ttl_secs: u64) -> RoleRuleCache {
        RoleRuleCache { ttl: ttl_secs as i64, seen: RwLock::default() }
    }

    pub async fn any_requires_mfa(&self, db: &Db, now: i64) -> Result<bool, StorageError> {
        if self.ttl > 0
            && let Ok(seen) = self.seen.read()
            && let Some((expires, any)) = *seen
            && expires > now
        {
            return Ok(any);
        }
        let any = crate::storage::roles::any_requires_mfa(db).await?;
        if let Ok(mut seen) = self.seen.write() {
            *seen = Some((now + self.ttl, any));
        }
        Ok(any)
    }
}
