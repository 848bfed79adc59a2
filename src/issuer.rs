//! The issuer URL, used exactly as configured, and the endpoint URLs derived
//! from it without ever doubling a slash.

use anyhow::anyhow;

#[derive(Debug, Clone)]
pub struct Issuer {
    /// Exactly as configured; this is the `iss` claim.
    raw: String,
    /// `raw` without a trailing slash; endpoints hang off this.
    base: String,
    /// The URL path without a trailing slash (`""` at the root); routes mount here.
    path_prefix: String,
    /// Scheme, host and port: what a request's full URL starts with.
    origin: String,
}

impl Issuer {
    pub fn new(raw: &str) -> anyhow::Result<Issuer> {
        let url = url::Url::parse(raw).map_err(|e| anyhow!("issuer `{raw}`: {e}"))?;
        let base = raw.trim_end_matches('/').to_string();
        let path_prefix = url.path().trim_end_matches('/').to_string();
        let origin = url.origin().ascii_serialization();
        Ok(Issuer { raw: raw.to_string(), base, path_prefix, origin })
    }

    pub fn as_str(&self) -> &str {
        &self.raw
    }

    pub fn path_prefix(&self) -> &str {
        &self.path_prefix
    }

    /// The issuer's origin (`https://auth.example.com`), as browsers name it.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// `path` must start with `/`.
    pub fn endpoint(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joins_without_double_slashes() -> anyhow::Result<()> {
        let a = Issuer::new("https://auth.example.com/")?;
        assert_eq!(a.as_str(), "https://auth.example.com/");
        assert_eq!(a.endpoint("/jwks"), "https://auth.example.com/jwks");
        assert_eq!(a.path_prefix(), "");
        let b = Issuer::new("https://example.com/auth/tenant")?;
        assert_eq!(b.endpoint("/jwks"), "https://example.com/auth/tenant/jwks");
        assert_eq!(b.path_prefix(), "/auth/tenant");
        let c = Issuer::new("http://localhost:8080")?;
        assert_eq!(
            c.endpoint("/.well-known/openid-configuration"),
            "http://localhost:8080/.well-known/openid-configuration"
        );
        Ok(())
    }
}
