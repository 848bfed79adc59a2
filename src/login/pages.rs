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

/// Plain-words descriptions of scopes for the consent page.
pub fn describe_scope(s: &str) -> Option<&'static str> {
    match s {
        "openid" => Some("Know who you are"),
        "profile" => Some("See your name"),
        "email" => Some("See your email address"),
        "offline_access" => Some("Stay connected when you are not using it"),
        _ => None,
    }
}
