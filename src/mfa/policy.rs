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
        let live = |at: Option<i64>| at.is_some_and(|t| max_age.is_none_or(|m| now - t <= m));
        if live(self.phr_at) {
            Level::Phr
        } else if live(self.mfa_at) {
            Level::Mfa
        } else {
            Level::Single
        }
    }
}

/// Whether a second-factor step is needed: the session's live proofs fall
/// short of `need`.
pub fn short(need: Level, proofs: Proofs, max_age: Option<i64>, now: i64) -> bool {
    need > Level::Single && proofs.level(max_age, now) < need
}

/// The `acr` a token says: of the levels the request accepts (`acr_values`),
/// the strongest the session reached; without `acr_values`, the level
/// reached. None for a single factor.
pub fn acr_claim(acr_values: Option<&str>, proofs: Proofs, now: i64) -> Option<String> {
    let reached = proofs.level(None, now);
    let level = levels(acr_values).filter(|l| *l <= reached).max().unwrap_or(reached);
    level.acr().map(str::to_string)
}

/// Whether a session may add, rename or remove second factors: a sign-in
/// within `reauth_secs`, and — once the account has factors — one of them
/// proved in that session (so a password alone cannot add an attacker's
/// factor, nor take the owner's away).
pub fn may_change_factors(now: i64, auth_time: i64, reauth_secs: u64, proofs: Proofs, has_factors: bool) -> bool {
    now - auth_time <= reauth_secs as i64 && (!has_factors || proofs.level(None, now) >= Level::Mfa)
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
        assert!(!short(Level::Mfa, p, None, 1000));
        assert!(short(Level::Mfa, p, Some(60), 1000), "max_age older than the proof asks again");
        assert!(short(Level::Phr, p, None, 1000));
        assert!(!short(Level::Single, Proofs::default(), None, 1000));
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
