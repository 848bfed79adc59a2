//! Per-replica rate limits for the endpoints a browser can be made to hammer:
//! `/authorize` (hidden-iframe `prompt=none` polling) per client IP and per
//! session, and password attempts per client IP and per account. Limits are
//! token buckets (governor): a burst of `per_minute`, refilled evenly.

use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;

use axum::extract::ConnectInfo;
use axum::http::HeaderMap;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::config::RateLimitConfig;

pub struct Limits {
    enabled: bool,
    trust_forwarded_for: bool,
    authorize_ip: DefaultKeyedRateLimiter<IpAddr>,
    authorize_session: DefaultKeyedRateLimiter<String>,
    login_ip: DefaultKeyedRateLimiter<IpAddr>,
    login_account: DefaultKeyedRateLimiter<String>,
}

fn quota(per_minute: u32) -> Quota {
    Quota::per_minute(NonZeroU32::new(per_minute.max(1)).unwrap_or(NonZeroU32::MIN))
}

impl Limits {
    pub fn new(c: &RateLimitConfig) -> Limits {
        Limits {
            enabled: c.enabled,
            trust_forwarded_for: c.trust_forwarded_for,
            authorize_ip: RateLimiter::keyed(quota(c.authorize_per_ip_per_minute)),
            authorize_session: RateLimiter::keyed(quota(c.authorize_per_session_per_minute)),
            login_ip: RateLimiter::keyed(quota(c.login_per_ip_per_minute)),
            login_account: RateLimiter::keyed(quota(c.login_per_account_per_minute)),
        }
    }

    /// The client's address: the peer, or the first X-Forwarded-For hop when
    /// the operator says a trusted proxy sets it.
    pub fn client_ip(&self, headers: &HeaderMap, peer: Option<&ConnectInfo<SocketAddr>>) -> Option<IpAddr> {
        if self.trust_forwarded_for
            && let Some(ip) = headers
                .get("x-forwarded-for")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.split(',').next())
                .and_then(|v| v.trim().parse().ok())
        {
            return Some(ip);
        }
        peer.map(|c| c.0.ip())
    }

    /// One /authorize request; false when over a limit.
    pub fn authorize(&self, ip: Option<IpAddr>, session_hash: Option<&str>) -> bool {
        if !self.enabled {
            return true;
        }
        let ip_ok = ip.is_none_or(|ip| self.authorize_ip.check_key(&ip).is_ok());
        let session_ok = session_hash.is_none_or(|s| self.authorize_session.check_key(&s.to_string()).is_ok());
        ip_ok && session_ok
    }

    /// One password attempt; false when over a limit.
    pub fn login(&self, ip: Option<IpAddr>, email: &str) -> bool {
        if !self.enabled {
            return true;
        }
        let ip_ok = ip.is_none_or(|ip| self.login_ip.check_key(&ip).is_ok());
        let account_ok = self.login_account.check_key(&crate::domain::normalize_email(email)).is_ok();
        ip_ok && account_ok
    }

    /// Forgets keys whose buckets are full again, so memory stays bounded.
    pub fn shrink(&self) {
        self.authorize_ip.retain_recent();
        self.authorize_session.retain_recent();
        self.login_ip.retain_recent();
        self.login_account.retain_recent();
    }
}
