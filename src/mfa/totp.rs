//! Authenticator-app codes (RFC 6238): 6 digits, 30-second steps, HMAC-SHA-1
//! (what every authenticator app speaks), one step of clock skew either way.
//! A code is accepted once: the step it matched must be later than the last
//! one accepted (`storage::factors::spend_step`).

use totp_rs::{Algorithm, Builder, Secret, Totp};

pub const DIGITS: u8 = 6;
pub const STEP_SECS: u64 = 30;

/// A new random secret (160 bits, as RFC 4226 recommends), base32.
pub fn new_secret() -> String {
    Secret::from(&crate::crypto::random::bytes::<20>()[..]).to_base32()
}

fn totp(secret_b32: &str, issuer: &str, account: &str) -> Option<Totp> {
    let secret = Secret::try_from_base32(secret_b32).ok()?;
    // `:` separates issuer and account in the otpauth label.
    let issuer = issuer.replace(':', " ");
    let account = account.replace(':', " ");
    Builder::new()
        .with_algorithm(Algorithm::SHA1)
        .with_digits(DIGITS)
        .with_step_duration(STEP_SECS)
        .with_skew(1)
        .with_secret(secret)
        .with_issuer(Some(issuer))
        .with_account_name(account)
        .build()
        .ok()
}

/// The time step a code matches at `now` (±1 step), if any.
pub fn check(secret_b32: &str, code: &str, now: i64) -> Option<i64> {
    let code: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    if code.len() != DIGITS as usize || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let t = totp(secret_b32, "x", "x")?;
    t.check(&code, u64::try_from(now).ok()?).map(|s| s as i64)
}

/// The code at `now` (for tests and the RFC vectors).
pub fn code_at(secret_b32: &str, now: i64) -> Option<String> {
    Some(totp(secret_b32, "x", "x")?.generate(u64::try_from(now).ok()?).to_string())
}

/// The `otpauth://` URL an authenticator app scans.
pub fn url(secret_b32: &str, issuer: &str, account: &str) -> Option<String> {
    totp(secret_b32, issuer, account)?.to_url().ok()
}

/// The QR code of `data` as an SVG element (inline: the page fetches nothing).
pub fn qr_svg(data: &str) -> Option<String> {
    let code = qrcode::QrCode::with_error_correction_level(data.as_bytes(), qrcode::EcLevel::M).ok()?;
    let svg = code
        .render::<qrcode::render::svg::Color>()
        .min_dimensions(200, 200)
        .dark_color(qrcode::render::svg::Color("#000000"))
        .light_color(qrcode::render::svg::Color("#ffffff"))
        .build();
    // The XML declaration is not wanted inside HTML.
    Some(match svg.find("<svg") {
        Some(i) => svg[i..].to_string(),
        None => svg,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 Appendix B, SHA-1 (secret "12345678901234567890"), last 6 digits.
    #[test]
    fn rfc6238_vectors() {
        let secret = Secret::from(&b"12345678901234567890"[..]).to_base32();
        for (t, code) in [
            (59, "287082"),
            (1111111109, "081804"),
            (1111111111, "050471"),
            (1234567890, "005924"),
            (2000000000, "279037"),
            (20000000000, "353130"),
        ] {
            assert_eq!(code_at(&secret, t).as_deref(), Some(code), "t = {t}");
        }
    }

    #[test]
    fn skew_of_one_step_and_no_more() {
        let s = new_secret();
        let now = 1_700_000_000;
        let code = code_at(&s, now).unwrap();
        assert_eq!(check(&s, &code, now), Some(now / 30));
        assert_eq!(check(&s, &code, now + 30), Some(now / 30));
        assert_eq!(check(&s, &code, now - 30), Some(now / 30));
        assert_eq!(check(&s, &code, now + 90), None);
        assert_eq!(check(&s, "12345", now), None);
        assert_eq!(check(&s, "abcdef", now), None);
        assert!(url(&s, "Sesame", "a@example.com").unwrap().starts_with("otpauth://totp/"));
        assert!(qr_svg("otpauth://totp/x").unwrap().starts_with("<svg"));
    }
}
