//! The registered web origins, per replica, for CORS and for who may frame
//! `/check_session` (held by the application state).

use std::collections::HashSet;
use std::sync::{Arc, RwLock};

use crate::storage::{Db, StorageError, clients};

/// Every registered web origin, refreshed from the database every few seconds.
#[derive(Default)]
pub struct Origins {
    cached: RwLock<(i64, Arc<OriginSets>)>,
}

#[derive(Default)]
pub struct OriginSets {
    /// `--web-origin`s: answered by CORS.
    pub web: HashSet<String>,
    /// Web origins plus the origins of http(s) redirect URIs: the pages an RP
    /// runs on, which may frame `/check_session`.
    pub rp: HashSet<String>,
}

impl Origins {
    pub async fn get(&self, db: &Db, now: i64, ttl: i64) -> Result<Arc<OriginSets>, StorageError> {
        if let Ok(c) = self.cached.read()
            && c.0 > now
        {
            return Ok(c.1.clone());
        }
        let list = match clients::list(db).await {
            Ok(list) => list,
            // The database is away: keep answering with what was last read.
            Err(e) if e.is_unavailable() => match self.cached.read() {
                Ok(c) => return Ok(c.1.clone()),
                Err(_) => return Err(e),
            },
            Err(e) => return Err(e),
        };
        let mut sets = OriginSets::default();
        for c in list {
            sets.rp.extend(c.redirect_uris.iter().filter_map(|u| http_origin(u)));
            sets.rp.extend(c.web_origins.iter().cloned());
            sets.web.extend(c.web_origins);
        }
        let sets = Arc::new(sets);
        if let Ok(mut c) = self.cached.write() {
            *c = (now + ttl.max(1), sets.clone());
        }
        Ok(sets)
    }
}

/// The origin of an http(s) URI; None for a native app's private-use scheme.
pub fn http_origin(uri: &str) -> Option<String> {
    let u = url::Url::parse(uri).ok()?;
    matches!(u.scheme(), "http" | "https").then(|| u.origin().ascii_serialization())
}
