//! One askama struct per login-box page.

use askama::Template;

use crate::http::page::Brand;

#[derive(Template)]
#[template(path = "login.html")]
pub struct LoginPage {
    pub brand: Brand,
    pub client_name: String,
    pub action: String,
    pub csrf: String,
    pub req: String,
    pub email: String,
    pub error: Option<String>,
    pub signup_url: Option<String>,
    pub current_account: Option<String>,
    pub continue_url: String,
    /// "Continue with …" buttons, in the config's order.
    pub providers: Vec<ProviderButton>,
    pub password_login: bool,
    /// An account link waiting for proof, in plain words.
    pub notice: Option<String>,
    pub forgot_url: String,
    pub resend_url: String,
    /// "Sign in with a passkey" (and the browser's autofill): the endpoints.
    pub passkey: Option<(String, String)>,
}

pub struct ProviderButton {
    pub id: String,
    pub label: String,
    pub url: String,
    pub icon: String,
}

#[derive(Template)]
#[template(path = "signup.html")]
pub struct SignupPage {
    pub brand: Brand,
    pub client_name: String,
    pub action: String,
    pub login_url: String,
    pub csrf: String,
    pub req: String,
    pub email: String,
    pub name: String,
    pub error: Option<String>,
    pub min_length: usize,
}

/// An authenticator app being enrolled: its key and QR code.
pub struct TotpView {
    pub secret: String,
    pub qr_svg: String,
}

#[derive(Template)]
#[template(path = "factor.html")]
pub struct FactorPage {
    pub brand: Brand,
    pub title: String,
    pub client_name: String,
    pub account: String,
    pub csrf: String,
    pub req: String,
    pub error: Option<String>,
    pub notice: Option<String>,
    pub enrol: Option<TotpView>,
    pub enrol_action: String,
    pub code_form: bool,
    pub code_action: String,
    pub remember_days: u64,
    pub passkey_check: bool,
    pub passkey_register: bool,
    pub passkey_options: String,
    pub passkey_finish: String,
    /// Sign in again before a first factor can be set up.
    pub relogin: Option<String>,
}

pub(super) use crate::http::page::RecoveryCodesPage;

#[derive(Template)]
#[template(path = "no_access.html")]
pub struct NoAccessPage {
    pub brand: Brand,
    pub client_name: String,
    pub account: String,
    pub action: String,
    pub csrf: String,
    pub req: String,
}

#[derive(Template)]
#[template(path = "consent.html")]
pub struct ConsentPage {
    pub brand: Brand,
    pub client_name: String,
    pub action: String,
    pub csrf: String,
    pub req: String,
    pub email: String,
    pub scopes: Vec<String>,
}

pub use crate::domain::describe_scope;
