//! Per-replica rate limits for the endpoints a browser can be made to hammer:
//! `/authorize` (hidden-iframe `prompt=none` polling) per client address and
//! per session, password attempts and sign-ups per client address, and
//! password attempts per account. Limits are token buckets (governor): a burst
//! of `per_minute`, refilled evenly.
//!
//! Strangers cannot lock an owner out: the per-account limit counts attempts
//! per (account, address), and the account-wide budget, once spent, stops only
//! addresses that never signed in to that account — the owner's own keep
//! working. Every map holds at most `max_tracked_keys` keys: when full, idle
//! (full) buckets are dropped first, and a new key is refused rather than
//! flushing somebody else's bucket.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Instant;

use crate::config::RateLimitConfig;

pub struct Limits {
    enabled: bool,
    authorize_ip: Buckets<IpAddr>,
    authorize_session: Buckets<String>,
    login_ip: Buckets<IpAddr>,
    login_account_ip: Buckets<(String, IpAddr)>,
    login_account: Buckets<String>,
    /// Mails asked for, per address typed and per account id.
    mails: Buckets<String>,
    /// Failed client authentications at the token endpoints.
    client_auth_ip: Buckets<IpAddr>,
    client_auth_id: Buckets<String>,
    capacity: usize,
    /// (account, address) pairs that signed in successfully, with a sequence
    /// number for evicting the oldest.
    known: Mutex<(u64, HashMap<AccountAt, u64>)>,
}

/// An account (normalised email) at an address.
type AccountAt = (String, IpAddr);
/// Tokens left, and when they were counted.
type Bucket = (f64, Instant);

/// Keyed token buckets with a fixed capacity. (governor's keyed limiter has
/// no bound on its map, and no way to refuse a new key without inserting it.)
struct Buckets<K> {
    burst: f64,
    per_sec: f64,
    capacity: usize,
    /// The buckets, and when idle ones were last swept out of a full map.
    map: Mutex<(HashMap<K, Bucket>, Option<Instant>)>,
}

impl<K: Hash + Eq + Clone> Buckets<K> {
    fn new(per_minute: u32, capacity: usize) -> Buckets<K> {
        let burst = f64::from(per_minute.max(1));
        Buckets { burst, per_sec: burst / 60.0, capacity: capacity.max(1), map: Mutex::default() }
    }

    /// Takes one token for `key`; false when its bucket is empty, or when the
    /// map is full of busy buckets and `key` is new.
    fn take(&self, key: &K) -> bool {
        let now = Instant::now();
        let Ok(mut guard) = self.map.lock() else { return false };
        let (map, swept) = &mut *guard;
        if !map.contains_key(key) && map.len() >= self.capacity {
            // Idle buckets (full again) go first, at most once a second; busy
            // ones are never flushed.
            if swept.is_none_or(|t| now.duration_since(t).as_secs() >= 1) {
                map.retain(|_, b| self.level(*b, now) < self.burst);
                *swept = Some(now);
            }
            if map.len() >= self.capacity {
                return false;
            }
        }
        let b = map.entry(key.clone()).or_insert((self.burst, now));
        let tokens = self.level(*b, now);
        if tokens >= 1.0 {
            *b = (tokens - 1.0, now);
            true
        } else {
            *b = (tokens, now);
            false
        }
    }

    /// Whether `key` has a token left, without taking one.
    fn has(&self, key: &K) -> bool {
        let now = Instant::now();
        let Ok(guard) = self.map.lock() else { return false };
        guard.0.get(key).is_none_or(|b| self.level(*b, now) >= 1.0)
    }

    fn level(&self, (tokens, at): (f64, Instant), now: Instant) -> f64 {
        (tokens + now.duration_since(at).as_secs_f64() * self.per_sec).min(self.burst)
    }

    /// Drops idle (full) buckets.
    fn shrink(&self) {
        let now = Instant::now();
        if let Ok(mut guard) = self.map.lock() {
            guard.0.retain(|_, b| self.level(*b, now) < self.burst);
        }
    }

    fn len(&self) -> usize {
        self.map.lock().map(|m| m.0.len()).unwrap_or(0)
    }
}

impl Limits {
    pub fn new(c: &RateLimitConfig) -> Limits {
        Limits {
            enabled: c.enabled,
            capacity: c.max_tracked_keys.max(1),
            authorize_ip: Buckets::new(c.authorize_per_ip_per_minute, c.max_tracked_keys),
            authorize_session: Buckets::new(c.authorize_per_session_per_minute, c.max_tracked_keys),
            login_ip: Buckets::new(c.login_per_ip_per_minute, c.max_tracked_keys),
            login_account_ip: Buckets::new(c.login_per_account_per_minute, c.max_tracked_keys),
            login_account: Buckets::new(c.login_per_account_per_minute, c.max_tracked_keys),
            mails: Buckets::new(c.mails_per_account_per_minute, c.max_tracked_keys),
            client_auth_ip: Buckets::new(c.client_auth_failures_per_minute, c.max_tracked_keys),
            client_auth_id: Buckets::new(c.client_auth_failures_per_minute, c.max_tracked_keys),
            known: Mutex::default(),
        }
    }

    /// One /authorize request; false when over a limit.
    pub fn authorize(&self, ip: Option<IpAddr>, session_hash: Option<&str>) -> bool {
        if !self.enabled {
            return true;
        }
        let ip_ok = ip.is_none_or(|ip| self.authorize_ip.take(&ip));
        let session_ok = session_hash.is_none_or(|s| self.authorize_session.take(&s.to_string()));
        ip_ok && session_ok
    }

    /// One password attempt for `email` (already bounded in length); false
    /// when over a limit.
    pub fn login(&self, ip: Option<IpAddr>, email: &str) -> bool {
        if !self.enabled {
            return true;
        }
        let account = crate::domain::normalize_email(email);
        let Some(ip) = ip else {
            return self.login_account.take(&account);
        };
        if !self.login_ip.take(&ip) || !self.login_account_ip.take(&(account.clone(), ip)) {
            return false;
        }
        // The account-wide budget stops strangers, never the owner's addresses.
        self.login_account.take(&account) || self.is_known(&account, ip)
    }

    /// One sign-up from `ip`: throttled like password attempts per address.
    pub fn signup(&self, ip: Option<IpAddr>) -> bool {
        !self.enabled || ip.is_none_or(|ip| self.login_ip.take(&ip))
    }

    /// One mail asked for from `ip` to `address` (verification, reset): the
    /// address's own budget and the client's password-attempt budget.
    pub fn mail(&self, ip: Option<IpAddr>, address: &str) -> bool {
        if !self.enabled {
            return true;
        }
        let key = format!("to:{}", crate::domain::normalize_email(address));
        ip.is_none_or(|ip| self.login_ip.take(&ip)) && self.mails.take(&key)
    }

    /// One mail to account `user_id`, whatever address led to it.
    pub fn mail_account(&self, user_id: &str) -> bool {
        !self.enabled || self.mails.take(&format!("user:{user_id}"))
    }

    /// Whether client authentication from `ip` may be tried at all: an
    /// address that spent its budget of failures waits, right credentials
    /// too (so guessing a weak operator-chosen secret is slowed, and a hit
    /// cannot be told from a miss).
    pub fn client_auth_open(&self, ip: Option<IpAddr>) -> bool {
        !self.enabled || ip.is_none_or(|ip| self.client_auth_ip.has(&ip))
    }

    /// One failed client authentication at `/token`, `/revoke` or
    /// `/introspect` from `ip` naming `client_id`; false when the address's
    /// or the id's budget of failures is spent. The id's budget only turns
    /// failures into 429s: right credentials are never refused for it, so
    /// nobody can lock a client out by failing with its id.
    pub fn client_auth_failed(&self, ip: Option<IpAddr>, client_id: Option<&str>) -> bool {
        if !self.enabled {
            return true;
        }
        let ip_ok = ip.is_none_or(|ip| self.client_auth_ip.take(&ip));
        let id_ok = client_id.is_none_or(|id| self.client_auth_id.take(&id.to_string()));
        ip_ok && id_ok
    }

    /// Remembers that `email` signed in from `ip`.
    pub fn signed_in(&self, ip: Option<IpAddr>, email: &str) {
        let Some(ip) = ip else { return };
        let Ok(mut known) = self.known.lock() else { return };
        let (seq, map) = &mut *known;
        *seq += 1;
        map.insert((crate::domain::normalize_email(email), ip), *seq);
        if map.len() > self.capacity
            && let Some(oldest) = map.iter().min_by_key(|(_, s)| **s).map(|(k, _)| k.clone())
        {
            map.remove(&oldest);
        }
    }

    fn is_known(&self, account: &str, ip: IpAddr) -> bool {
        self.known.lock().map(|k| k.1.contains_key(&(account.to_string(), ip))).unwrap_or(false)
    }

    /// Forgets keys whose buckets are full again, so memory stays bounded.
    pub fn shrink(&self) {
        self.authorize_ip.shrink();
        self.authorize_session.shrink();
        self.login_ip.shrink();
        self.login_account_ip.shrink();
        self.login_account.shrink();
        self.mails.shrink();
        self.client_auth_ip.shrink();
        self.client_auth_id.shrink();
    }

    /// Keys tracked across every map (for tests and metrics).
    pub fn tracked_keys(&self) -> usize {
        let known = self.known.lock().map(|k| k.1.len()).unwrap_or(0);
        self.authorize_ip.len()
            + self.authorize_session.len()
            + self.login_ip.len()
            + self.login_account_ip.len()
            + self.login_account.len()
            + self.mails.len()
            + self.client_auth_ip.len()
            + self.client_auth_id.len()
            + known
    }
}
