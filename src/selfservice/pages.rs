//! The self-service pages' templates.

use askama::Template;

use crate::http::page::Brand;

/// One address to type: resend the verification link, forgot password.
#[derive(Template)]
#[template(path = "email_form.html")]
pub struct EmailForm {
    pub brand: Brand,
    pub title: String,
    pub lead: String,
    pub action: String,
    pub csrf: String,
    pub req: String,
    pub email: String,
    pub error: Option<String>,
    pub button: String,
    pub back_url: Option<String>,
}

/// The page an emailed link opens: one button (and a new password for a reset).
#[derive(Template)]
#[template(path = "link_form.html")]
pub struct LinkForm {
    pub brand: Brand,
    pub title: String,
    pub lead: String,
    pub action: String,
    pub csrf: String,
    pub token: String,
    pub password: bool,
    pub min_length: usize,
    pub error: Option<String>,
    pub button: String,
}

pub struct SessionView {
    pub sid: String,
    pub device: String,
    pub ip: String,
    pub started: String,
    pub last_used: String,
    pub current: bool,
}

pub struct IdentityView {
    pub provider: String,
    pub provider_name: String,
    pub subject: String,
    pub email: String,
}

pub struct ConsentView {
    pub client_id: String,
    pub client_name: String,
    pub scopes: String,
    pub granted: String,
}

#[derive(Template)]
#[template(path = "account.html")]
pub struct AccountPage {
    pub brand: Brand,
    pub base: String,
    pub csrf: String,
    pub email: String,
    pub email_verified: bool,
    pub name: String,
    pub has_password: bool,
    pub min_length: usize,
    pub notice: Option<String>,
    pub error: Option<String>,
    /// "Sign in again", when a change needs a fresh sign-in.
    pub reauth_url: Option<String>,
    pub sessions: Vec<SessionView>,
    pub identities: Vec<IdentityView>,
    /// (id, name) of enabled providers not linked yet.
    pub providers: Vec<(String, String)>,
    pub consents: Vec<ConsentView>,
    pub factors: FactorsView,
    /// (address, name) of the application the user came from.
    pub back: Option<(String, String)>,
}

pub struct FactorView {
    pub factor_id: String,
    /// "Authenticator app" or "Passkey".
    pub kind: String,
    pub name: String,
    pub added: String,
    pub last_used: String,
}

/// The account page's second factors.
pub struct FactorsView {
    pub list: Vec<FactorView>,
    pub recovery_codes_left: i64,
    pub passkeys: bool,
}

/// An authenticator app being added from the account page.
#[derive(Template)]
#[template(path = "account_totp.html")]
pub struct AccountTotpPage {
    pub brand: Brand,
    pub base: String,
    pub csrf: String,
    pub secret: String,
    pub qr_svg: String,
    pub error: Option<String>,
}

/// `/`: the way to the account page (and the console, for administrators).
#[derive(Template)]
#[template(path = "home.html")]
pub struct Home {
    pub brand: Brand,
    pub account: String,
    pub console: Option<String>,
}
