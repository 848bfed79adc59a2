//! Rate limits for the endpoints a browser can be made to hammer.
//!
//! Password attempts are counted in the database, so every replica spends one
//! budget (N replicas must not give a guesser N times the attempts): per
//! address, per account at an address, and per account. Strangers cannot lock
//! an owner out: the account-wide budget, once spent, stops only addresses
//! that never signed in to that account. The count is one statement, made only
//! on an attempt; nothing else pays a round trip.
//!
//! The rest are per replica, in memory, token buckets (a burst of
//! `per_minute`, refilled evenly): `/authorize` (hidden-iframe `prompt=none`
//! polling) per client address and per session, sign-ups and mails per
//! address, mails per account, failed client authentications. Every map holds
//! at most `max_tracked_keys` keys: when full, idle (full) buckets are dropped
//! first, and a new key is refused rather than flushing somebody else's
//! bucket.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Instant;

use crate::config::RateLimitConfig;
use crate::storage::{Db, StorageError, attempts};

pub struct Limits {
    enabled: bool,
    authorize_ip: Buckets<IpAddr>,
    authorize_session: Buckets<String>,
    login_ip: Buckets<IpAddr>,
    /// Password attempts per minute, per address and per account (counted
    /// in the database).
    login_per_ip: u32,
    login_per_account: u32,
    /// Mails asked for, per address typed and per account id.
    mails: Buckets<String>,
    /// Failed client authentications at the token endpoints.
    client_auth_ip: Buckets<IpAddr>,
    client_auth_id: Buckets<String>,
}

/// `ok`, counting a refusal by `limiter` when it is false.
fn refused_by(limiter: &'static str, ok: bool) -> bool {
    if !ok {
        crate::telemetry::rate_limited(limiter);
    }
    ok
}

/// How long an address an account signed in from stays known (90 days).
const KNOWN_FOR: i64 = 90 * 86_400;

/// The unit a password budget counts: an IPv4 address, or an IPv6 /64 (one
/// subscriber's network, where a host picks new addresses at will).
fn network(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => {
            let s = v6.segments();
            IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
        }
        v4 => v4,
    }
}

/// The stored key of a budget: a hash, so no typed address is kept.
fn bucket(kind: &str, key: &str) -> String {
    crate::crypto::random::sha256_hex(&format!("{kind}:{key}"))
}
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
            authorize_ip: Buckets::new(c.authorize_per_ip_per_minute, c.max_tracked_keys),
            authorize_session: Buckets::new(c.authorize_per_session_per_minute, c.max_tracked_keys),
            login_ip: Buckets::new(c.login_per_ip_per_minute, c.max_tracked_keys),
            login_per_ip: c.login_per_ip_per_minute,
            login_per_account: c.login_per_account_per_minute,
            mails: Buckets::new(c.mails_per_account_per_minute, c.max_tracked_keys),
            client_auth_ip: Buckets::new(c.client_auth_failures_per_minute, c.max_tracked_keys),
            client_auth_id: Buckets::new(c.client_auth_failures_per_minute, c.max_tracked_keys),
        }
    }

    /// One /authorize request; false when over a limit.
    pub fn authorize(&self, ip: Option<IpAddr>, session_hash: Option<&str>) -> bool {
        if !self.enabled {
            return true;
        }
        let ip_ok = ip.is_none_or(|ip| self.authorize_ip.take(&ip));
        let session_ok = session_hash.is_none_or(|s| self.authorize_session.take(&s.to_string()));
        refused_by("authorize_ip", ip_ok) && refused_by("authorize_session", session_ok)
    }

    /// One password attempt for `email` (already bounded in length) from
    /// `ip`; false when over a limit. Counted in the database, so every
    /// replica spends one budget: per address, per account at an address,
    /// and per account — which, once spent, stops only addresses that never
    /// signed in to the account (the owner's own keep working).
    pub async fn login(&self, db: &Db, now: i64, ip: Option<IpAddr>, email: &str) -> Result<bool, StorageError> {
        if !self.enabled {
            return Ok(true);
        }
        let account = crate::domain::normalize_email(email);
        let mut buckets = vec![bucket("account", &account)];
        if let Some(ip) = ip.map(network) {
            buckets.push(bucket("address", &ip.to_string()));
            buckets.push(bucket("account_at", &format!("{account} {ip}")));
        }
        let counts = attempts::count(db, &buckets, now).await?;
        let over = |i: usize, limit: u32| counts.get(i).is_some_and(|c| c.in_last_minute() > f64::from(limit));
        if ip.is_some()
            && (!refused_by("login_ip", !over(1, self.login_per_ip))
                || !refused_by("login_account_ip", !over(2, self.login_per_account)))
        {
            return Ok(false);
        }
        if !over(0, self.login_per_account) {
            return Ok(true);
        }
        let known = match ip.map(network) {
            Some(ip) => attempts::is_known(db, &bucket("known", &format!("{account} {ip}")), now - KNOWN_FOR).await?,
            None => false,
        };
        Ok(refused_by("login_account", known))
    }

    /// One second-factor code (or passkey) tried for account `user_id` from
    /// `ip`; false when over a limit. The password budgets (per minute: per
    /// address, per account at an address, per account) and an hourly one
    /// per account (`mfa.max_attempts_per_hour`), so a 6-digit code cannot be
    /// worn down over days: both account-wide budgets, once spent, stop only
    /// addresses the account never proved a second factor from — the owner's
    /// keep working.
    pub async fn second_factor(
        &self,
        db: &Db,
        now: i64,
        ip: Option<IpAddr>,
        user_id: &str,
        per_hour: u32,
    ) -> Result<bool, StorageError> {
        if !self.enabled {
            return Ok(true);
        }
        // Normalised as `signed_in` stores it (`second_factor_proved`).
        let account = crate::domain::normalize_email(&format!("mfa:{user_id}"));
        let per_minute = self.login(db, now, ip, &account).await?;
        let hourly = attempts::count_in(db, &[bucket("account_hour", &account)], now, 3600).await?;
        let over_hour = hourly.first().is_some_and(|c| c.in_last_minute() > f64::from(per_hour));
        if per_minute && !over_hour {
            return Ok(true);
        }
        if !per_minute {
            return Ok(false);
        }
        let known = match ip.map(network) {
            Some(ip) => attempts::is_known(db, &bucket("known", &format!("{account} {ip}")), now - KNOWN_FOR).await?,
            None => false,
        };
        Ok(refused_by("mfa_account_hour", known))
    }

    /// Remembers that the second factor of `user_id` was proved from `ip`.
    pub async fn second_factor_proved(
        &self,
        db: &Db,
        now: i64,
        ip: Option<IpAddr>,
        user_id: &str,
    ) -> Result<(), StorageError> {
        self.signed_in(db, now, ip, &format!("mfa:{user_id}")).await
    }

    /// Remembers that `email` signed in from `ip`: the account-wide budget
    /// never stops that address (for `KNOWN_FOR`).
    pub async fn signed_in(&self, db: &Db, now: i64, ip: Option<IpAddr>, email: &str) -> Result<(), StorageError> {
        let Some(ip) = ip.map(network) else { return Ok(()) };
        let account = crate::domain::normalize_email(email);
        attempts::remember(db, &bucket("known", &format!("{account} {ip}")), now).await
    }

    /// One sign-up from `ip`: throttled like password attempts per address.
    pub fn signup(&self, ip: Option<IpAddr>) -> bool {
        !self.enabled || refused_by("signup_ip", ip.is_none_or(|ip| self.login_ip.take(&ip)))
    }

    /// One mail asked for from `ip` to `address` (verification, reset): the
    /// address's own budget and the client's password-attempt budget.
    pub fn mail(&self, ip: Option<IpAddr>, address: &str) -> bool {
        if !self.enabled {
            return true;
        }
        let key = format!("to:{}", crate::domain::normalize_email(address));
        refused_by("mail_ip", ip.is_none_or(|ip| self.login_ip.take(&ip))) && refused_by("mail", self.mails.take(&key))
    }

    /// One mail to account `user_id`, whatever address led to it.
    pub fn mail_account(&self, user_id: &str) -> bool {
        !self.enabled || refused_by("mail", self.mails.take(&format!("user:{user_id}")))
    }

    /// Whether client authentication from `ip` may be tried at all: an
    /// address that spent its budget of failures waits, right credentials
    /// too (so guessing a weak operator-chosen secret is slowed, and a hit
    /// cannot be told from a miss).
    pub fn client_auth_open(&self, ip: Option<IpAddr>) -> bool {
        !self.enabled || refused_by("client_auth_ip", ip.is_none_or(|ip| self.client_auth_ip.has(&ip)))
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
        refused_by("client_auth_ip", ip_ok) && refused_by("client_auth_id", id_ok)
    }

    /// Forgets keys whose buckets are full again, so memory stays bounded.
    pub fn shrink(&self) {
        self.authorize_ip.shrink();
        self.authorize_session.shrink();
        self.login_ip.shrink();
        self.mails.shrink();
        self.client_auth_ip.shrink();
        self.client_auth_id.shrink();
    }

    /// Keys tracked across every map (for tests and metrics).
    pub fn tracked_keys(&self) -> usize {
        self.authorize_ip.len()
            + self.authorize_session.len()
            + self.login_ip.len()
            + self.mails.len()
            + self.client_auth_ip.len()
            + self.client_auth_id.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ipv6_network_is_one_address_to_the_password_budgets() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        let other: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(network(a), network(b));
        assert_ne!(network(a), network(other));
        let v4: IpAddr = "198.51.100.7".parse().unwrap();
        assert_eq!(network(v4), v4);
    }
}
