//! Text from outside (requests, upstream providers, import files) on its way
//! to storage and logs: what counts as a control character, the one cleaning
//! used before a value is stored, and the one escape used before it is logged.
//! Imports nothing.

/// A character no identifier, address or form value of Sesame's may hold:
/// C0 controls (NUL, CR, LF, ESC, …), DEL and the C1 controls.
pub fn is_control(c: char) -> bool {
    c.is_control()
}

pub fn has_control(s: &str) -> bool {
    s.chars().any(is_control)
}

/// `s` without control characters.
pub fn clean(s: &str) -> String {
    if has_control(s) { s.chars().filter(|c| !is_control(*c)).collect() } else { s.to_string() }
}

/// `s` with every control character written as an escape (`\n`, `\u{1b}`),
/// so a value can neither forge a log line nor carry terminal escapes.
pub fn escape(s: &str) -> std::borrow::Cow<'_, str> {
    if !has_control(s) {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if is_control(c) => out.push_str(&c.escape_unicode().to_string()),
            c => out.push(c),
        }
    }
    std::borrow::Cow::Owned(out)
}

/// Whether one `application/x-www-form-urlencoded` (or query, or path)
/// component, percent-decoded, is UTF-8 without a control character.
pub fn decoded_is_clean(raw: &[u8]) -> bool {
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        let b = raw[i];
        if b == b'%'
            && let (Some(h), Some(l)) = (raw.get(i + 1).and_then(hex), raw.get(i + 2).and_then(hex))
        {
            out.push(h * 16 + l);
            i += 3;
            continue;
        }
        out.push(if b == b'+' { b' ' } else { b });
        i += 1;
    }
    std::str::from_utf8(&out).is_ok_and(|s| !has_control(s))
}

fn hex(b: &u8) -> Option<u8> {
    (*b as char).to_digit(16).map(|d| d as u8)
}

/// The first `key` of a urlencoded string whose key or value is not clean
/// (`decoded_is_clean`); `Some("")` when the key itself cannot be shown.
pub fn first_unclean(encoded: &[u8]) -> Option<String> {
    for pair in encoded.split(|b| *b == b'&') {
        let mut kv = pair.splitn(2, |b| *b == b'=');
        let k = kv.next().unwrap_or_default();
        let v = kv.next().unwrap_or_default();
        if !decoded_is_clean(k) {
            return Some(String::new());
        }
        if !decoded_is_clean(v) {
            let key: String = url::form_urlencoded::parse(k).map(|(a, _)| a.into_owned()).next().unwrap_or_default();
            return Some(key.chars().take(64).collect());
        }
    }
    None
}

/// Whether a JSON text escapes a control character inside a string: a
/// short escape (`\n`, `\r`, `\t`, `\b`, `\f`) or a `\uXXXX` naming one.
/// An escaped backslash (`\\u0000` as text) is not one.
pub fn json_escapes_control(body: &[u8]) -> bool {
    let mut i = 0;
    while i < body.len() {
        if body[i] != b'\\' {
            i += 1;
            continue;
        }
        match body.get(i + 1) {
            Some(b'n' | b'r' | b't' | b'b' | b'f') => return true,
            Some(b'u') => {
                let code = body
                    .get(i + 2..i + 6)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u32::from_str_radix(h, 16).ok());
                if code.and_then(char::from_u32).is_some_and(is_control) {
                    return true;
                }
                i += 6;
            }
            _ => i += 2,
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_are_found_cleaned_and_escaped() {
        assert!(has_control("a\u{0}b") && has_control("x\u{1b}[31m") && has_control("\u{85}"));
        assert!(!has_control("café 😀"));
        assert_eq!(clean("a\u{0}b\nc"), "abc");
        assert_eq!(escape("line\nforged=1 \u{1b}"), "line\\nforged=1 \\u{1b}");
        assert_eq!(escape("plain"), "plain");
    }

    #[test]
    fn urlencoded_components() {
        assert!(decoded_is_clean(b"x%20y+%F0%9F%98%80"));
        assert!(!decoded_is_clean(b"x%00"));
        assert!(!decoded_is_clean(b"%FF"), "not UTF-8");
        assert!(!decoded_is_clean(b"a%0Ab"));
        assert_eq!(first_unclean(b"grant_type=x&client_id=x%00"), Some("client_id".into()));
        assert_eq!(first_unclean(b"a=1&b=%F0%9F%98%80"), None);
        assert!(json_escapes_control(br#"{"name": "a\u0000"}"#));
        assert!(json_escapes_control(br#"{"name": "a\u001B"}"#));
        assert!(!json_escapes_control(br#"{"name": "\u00e9"}"#));
        assert!(json_escapes_control(br#"{"name": "a\nb"}"#));
        assert!(!json_escapes_control(br#"{"name": "a\\u0000 and \\n as text"}"#));
    }
}
