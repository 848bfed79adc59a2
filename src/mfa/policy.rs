//! Which level of sign-in a request needs, whether a session has reached it,
//! and how that level is named in tokens (`acr`, `amr`). Plain functions of
//! their inputs: `oidc::authorize::decide` asks them.

/// `acr` of a sign-in with a second factor: the value Auth0 documents for
/// step-up (OpenID PAPE "multi-factor").
pub const ACR_MFA: &str = "http://schemas.openid.net/pape/policies/2007/06/multi-factor";
/// `acr` of a sign-in with a phishing-resistant factor (a passkey): OpenID EAP `phr`.
pub const ACR_PHR: &str = "phr";
/// What discovery lists, weakest first.
pub const ACR_VALUES: [&str; 2] = [ACR_MFA, ACR_PHR];

/// A level of sign-in, weakest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// One factor (a password, a provider).
    Single,
    /// A second factor (or a passkey with user verification).
    Mfa,
    /// A phishing-resistant factor: a passkey.
    Phr,
}

impl Level {
    /// The level an `acr` this server issued says.
    pub fn of_acr(acr: Option<&str>) -> Level {
        match acr {
            Some(ACR_PHR) => Level::Phr,
            Some(ACR_MFA) => Level::Mfa,
            _ => Level::Single,
        }
    }

    pub fn acr(self) -> Option<&'static str> {
        match self {
            Level::Single => None,
            Level::Mfa => Some(ACR_MFA),
            Level::Phr => Some(ACR_PHR),
        }
    }
}

/// The level `acr_values` asks for: the weakest value Sesame knows (a request
/// names acceptable values, any one of which will do); Single when it names
/// none Sesame knows.
pub fn asked(acr_values: Option<&str>) -> Level {
    levels(acr_values).min().unwrap_or(Level::Single)
}

/// The levels named in `acr_values` that Sesame knows.
fn levels(acr_values: Option<&str>) -> impl Iterator<Item = Level> + '_ {
    acr_values.unwrap_or("").split(' ').filter_map(|v| match v {
        ACR_MFA => Some(Level::Mfa),
        ACR_PHR => Some(Level::Phr),
        _ => None,
    })
}

/// What decides the level a request needs.
#[derive(Debug, Clone, Copy, Default)]
pub struct Rules {
    /// `[mfa] policy = "required"`.
    pub global: bool,
    /// The client's `require_mfa`.
    pub client: bool,
    /// A role of the user's requires it.
    pub role: bool,
}

/// The level a request needs: the rules' (a second factor) or what it asks.
pub fn needed(rules: Rules, acr_values: Option<&str>) -> Level {
    let by_rule = if rules.global || rules.client || rules.role { Level::Mfa } else { Level::Single };
    by_rule.max(asked(acr_values))
}

/// What a session proved, and when.
#[derive(Debug, Clone, Copy, Default)]
pub struct Proofs {
    pub mfa_at: Option<i64>,
    pub phr_at: Option<i64>,
}

impl Proofs {
    /// The level reached, counting only proofs younger than `max_age`.
    pub fn level(&self, max_age: Option<i64>, now: i64) -> Level {
        self.level_since(max_age, None, now)
    }

    /// The level reached, counting proofs younger than `max_age` and those
    /// made since `since` (during the request being answered: `max_age=0`
    /// cannot ask for a factor proved a moment ago again).
    pub fn level_since(&self, max_age: Option<i64>, since: Option<i64>, now: i64) -> Level {
        let live =
            |at: Option<i64>| at.is_some_and(|t| max_age.is_none_or(|m| now - t <= m) || since.is_some_and(|s| t >= s));
        if live(self.phr_at) {
            Level::Phr
        } else if live(self.mfa_at) {
            Level::Mfa
        } else {
            Level::Single
        }
    }
}

/// Whether a second-factor step is needed: the session's live proofs (see
/// `Proofs::level_since`) fall short of `need`.
pub fn short(need: Level, proofs: Proofs, max_age: Option<i64>, since: Option<i64>, now: i64) -> bool {
    need > Level::Single && proofs.level_since(max_age, since, now) < need
}

/// The `acr` a token says: of the levels the request accepts (`acr_values`),
/// the strongest the session reached; without `acr_values`, the level
/// reached. None for a single factor.
pub fn acr_claim(acr_values: Option<&str>, proofs: Proofs, now: i64) -> Option<String> {
    let reached = proofs.level(None, now);
    let level = levels(acr_values).filter(|l| *l <= reached).max().unwrap_or(reached);
    level.acr().map(str::to_string)
}

/// A change to an account's second factors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// Add an authenticator app, rename a factor, new recovery codes.
    Other,
    AddPasskey,
    /// Remove a factor; `last_passkey`: the account's only passkey.
    Remove {
        last_passkey: bool,
    },
}

/// The level a session must have proved, within the last `reauth_secs`, to
/// make `change` on an account with these factors: none for a first factor
/// (a recent sign-in is enough); a passkey to add a passkey beside one, or
/// to take the last one away (so phishable factors can never make
/// themselves phishing-resistant); a second factor for anything else (so a
/// password alone cannot add an attacker's factor, nor take the owner's away).
pub fn change_needs(has_factors: bool, has_passkey: bool, change: Change) -> Level {
    match change {
        _ if !has_factors => Level::Single,
        Change::AddPasskey if has_passkey => Level::Phr,
        Change::Remove { last_passkey: true } => Level::Phr,
        _ => Level::Mfa,
    }
}

/// Whether a session signed in at `auth_time` with `proofs` may make a change
/// that needs `need`: the sign-in and the proof both within `reauth_secs` (a
/// remembered browser's old proof does not count).
pub fn may_change_factors(now: i64, auth_time: i64, reauth_secs: u64, proofs: Proofs, need: Level) -> bool {
    now - auth_time <= reauth_secs as i64 && proofs.level(Some(reauth_secs as i64), now) >= need
}

/// RFC 8176 `amr` after proving a factor whose own values are `factor`: the
/// session's values and the factor's, and `mfa` once there are two factors.
pub fn joined_amr(session: &[String], factor: &[String]) -> Vec<String> {
    let mut out: Vec<String> = session.iter().filter(|a| *a != "mfa").cloned().collect();
    for a in factor {
        if !out.contains(a) {
            out.push(a.clone());
        }
    }
    out.push("mfa".into());
    out
}

/// An upstream provider's `amr` as this session records it: a second factor
/// it claims counts only when the provider is trusted for it
/// (`trust_upstream_mfa`); otherwise such values are dropped. Returns the
/// values and whether they count as a second factor.
pub fn upstream_amr(amr: &[String], trusted: bool) -> (Vec<String>, bool) {
    const SECOND: [&str; 9] = ["mfa", "otp", "hwk", "swk", "sms", "fpt", "face", "iris", "sc"];
    let claims_mfa = amr.iter().any(|a| SECOND.contains(&a.as_str()));
    if trusted && claims_mfa {
        let mut out = amr.to_vec();
        if !out.iter().any(|a| a == "mfa") {
            out.push("mfa".into());
        }
        return (out, true);
    }
    let kept: Vec<String> = amr.iter().filter(|a| !SECOND.contains(&a.as_str())).cloned().collect();
    (if kept.is_empty() { vec!["fed".into()] } else { kept }, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_and_claims() {
        assert_eq!(asked(None), Level::Single);
        assert_eq!(asked(Some(ACR_MFA)), Level::Mfa);
        assert_eq!(asked(Some("phr")), Level::Phr);
        assert_eq!(asked(Some(&format!("phr {ACR_MFA}"))), Level::Mfa);
        assert_eq!(asked(Some("urn:other")), Level::Single);
        let none = Rules::default();
        assert_eq!(needed(none, None), Level::Single);
        assert_eq!(needed(Rules { role: true, ..none }, None), Level::Mfa);
        assert_eq!(needed(Rules { client: true, ..none }, Some("phr")), Level::Phr);
        let p = Proofs { mfa_at: Some(100), phr_at: None };
        assert!(!short(Level::Mfa, p, None, None, 1000));
        assert!(short(Level::Mfa, p, Some(60), None, 1000), "max_age older than the proof asks again");
        assert!(!short(Level::Mfa, p, Some(0), Some(90), 1000), "a proof made during the request counts");
        assert!(short(Level::Phr, p, None, None, 1000));
        assert!(!short(Level::Single, Proofs::default(), None, None, 1000));
        assert_eq!(change_needs(false, false, Change::AddPasskey), Level::Single);
        assert_eq!(change_needs(true, false, Change::AddPasskey), Level::Mfa);
        assert_eq!(change_needs(true, true, Change::AddPasskey), Level::Phr);
        assert_eq!(change_needs(true, true, Change::Remove { last_passkey: true }), Level::Phr);
        assert_eq!(change_needs(true, true, Change::Other), Level::Mfa);
        let recent = Proofs { mfa_at: Some(990), phr_at: None };
        assert!(may_change_factors(1000, 990, 300, recent, Level::Mfa));
        assert!(!may_change_factors(1000, 990, 300, p, Level::Mfa), "a remembered proof is too old");
        assert!(!may_change_factors(1000, 990, 300, recent, Level::Phr));
        let phr = Proofs { mfa_at: Some(100), phr_at: Some(100) };
        assert_eq!(acr_claim(None, phr, 1000).as_deref(), Some(ACR_PHR));
        assert_eq!(acr_claim(Some(ACR_MFA), phr, 1000).as_deref(), Some(ACR_MFA));
        assert_eq!(acr_claim(None, Proofs::default(), 1000), None);
        assert_eq!(joined_amr(&["pwd".into()], &["otp".into()]), vec!["pwd", "otp", "mfa"]);
        assert_eq!(upstream_amr(&["pwd".into(), "mfa".into()], false), (vec!["pwd".to_string()], false));
        assert_eq!(upstream_amr(&["otp".into()], true), (vec!["otp".to_string(), "mfa".into()], true));
        assert_eq!(upstream_amr(&[], true), (vec!["fed".to_string()], false));
    }
}
