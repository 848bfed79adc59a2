//! Request parameters as OAuth defines them: form or query encoded, each at
//! most once (RFC 6749 §3.1), empty values treated as absent.

use axum::extract::{FromRequest, Request};
use axum::http::Method;

/// Raw parameters of a GET query or a POST form body.
#[derive(Debug, Clone, Default)]
pub struct Params {
    pairs: Vec<(String, String)>,
}

/// A parameter given twice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Duplicate(pub String);

impl Params {
    pub fn from_pairs(pairs: Vec<(String, String)>) -> Params {
        Params { pairs }
    }

    pub fn parse(input: &[u8]) -> Params {
        Params { pairs: url::form_urlencoded::parse(input).into_owned().collect() }
    }

    /// The value of `name`; `Err` when it appears more than once.
    pub fn get(&self, name: &str) -> Result<Option<&str>, Duplicate> {
        let mut found = None;
        for (k, v) in &self.pairs {
            if k == name {
                if found.is_some() {
                    return Err(Duplicate(name.to_string()));
                }
                found = Some(v.as_str());
            }
        }
        Ok(found.filter(|v| !v.is_empty()))
    }

    /// The first parameter (of `names`) given more than once.
    pub fn first_duplicate(&self, names: &[&str]) -> Option<Duplicate> {
        names.iter().find_map(|n| self.get(n).err())
    }

    /// The first parameter whose value is longer than its limit: `limit_for(name)` bytes.
    pub fn oversized(&self, limit_for: impl Fn(&str) -> usize) -> Option<&str> {
        self.pairs.iter().find(|(k, v)| v.len() > limit_for(k)).map(|(k, _)| k.as_str())
    }

    /// Lenient read for fields whose duplication is harmless to diagnose (error paths).
    /// Every value given for `name` (checkboxes), in order.
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.pairs.iter().filter(|(k, _)| k == name).map(|(_, v)| v.as_str()).collect()
    }

    pub fn first(&self, name: &str) -> Option<&str> {
        self.pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str()).filter(|v| !v.is_empty())
    }
}

/// Extracts the query for GET and the urlencoded body for POST.
impl<S: Send + Sync> FromRequest<S> for Params {
    type Rejection = std::convert::Infallible;

    async fn from_request(req: Request, _state: &S) -> Result<Self, Self::Rejection> {
        if req.method() == Method::POST {
            let bytes = axum::body::to_bytes(req.into_body(), 64 * 1024).await.unwrap_or_default();
            Ok(Params::parse(&bytes))
        } else {
            Ok(Params::parse(req.uri().query().unwrap_or("").as_bytes()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicates_and_empties() {
        let p = Params::parse(b"a=1&b=&c=x%20y&a=2");
        assert_eq!(p.get("a"), Err(Duplicate("a".into())));
        assert_eq!(p.get("b"), Ok(None));
        assert_eq!(p.get("c"), Ok(Some("x y")));
        assert_eq!(p.get("zz"), Ok(None));
        assert_eq!(p.first("a"), Some("1"));
    }
}
