//! What each kind of provider means by default: its issuer or endpoints, the
//! scopes to ask for, where the profile claims are, and how it wants the
//! client to authenticate. Every value can be overridden in `[[providers]]`.

use crate::config::ProviderKind;

/// How the client secret reaches the token endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenAuth {
    Basic,
    Post,
}

pub struct Preset {
    pub name: &'static str,
    pub issuer: Option<&'static str>,
    pub authorization_endpoint: Option<&'static str>,
    pub token_endpoint: Option<&'static str>,
    pub userinfo_endpoint: Option<&'static str>,
    pub jwks_uri: Option<&'static str>,
    /// GitHub's list of addresses with their verification.
    pub emails_endpoint: Option<&'static str>,
    pub scopes: &'static [&'static str],
    pub subject: &'static str,
    pub email: Option<&'static str>,
    pub email_verified: Option<&'static str>,
    pub name_claim: &'static str,
    pub picture: Option<&'static str>,
    pub token_auth: TokenAuth,
    pub form_post: bool,
    pub icon: &'static str,
}

const OIDC: Preset = Preset {
    name: "OpenID Connect",
    issuer: None,
    authorization_endpoint: None,
    token_endpoint: None,
    userinfo_endpoint: None,
    jwks_uri: None,
    emails_endpoint: None,
    scopes: &["openid", "email", "profile"],
    subject: "sub",
    email: Some("email"),
    email_verified: Some("email_verified"),
    name_claim: "name",
    picture: Some("picture"),
    token_auth: TokenAuth::Basic,
    form_post: false,
    icon: "oidc.svg",
};

pub fn preset(kind: ProviderKind) -> Preset {
    match kind {
        ProviderKind::Oidc => OIDC,
        ProviderKind::Google => {
            Preset { name: "Google", issuer: Some("https://accounts.google.com"), icon: "google.svg", ..OIDC }
        }
        // The multi-tenant issuer: every tenant signs with its own `iss`
        // (`…/{tid}/v2.0`), checked against the token's `tid`.
        ProviderKind::Microsoft => Preset {
            name: "Microsoft",
            issuer: Some("https://login.microsoftonline.com/common/v2.0"),
            // `sub` differs per application; tenant + object id do not.
            subject: "tid+oid",
            // Microsoft does not vouch for the address of a personal or guest account.
            email_verified: None,
            picture: None,
            icon: "microsoft.svg",
            ..OIDC
        },
        ProviderKind::Gitlab => {
            Preset { name: "GitLab", issuer: Some("https://gitlab.com"), icon: "gitlab.svg", ..OIDC }
        }
        ProviderKind::Apple => Preset {
            name: "Apple",
            issuer: Some("https://appleid.apple.com"),
            authorization_endpoint: Some("https://appleid.apple.com/auth/authorize"),
            token_endpoint: Some("https://appleid.apple.com/auth/token"),
            jwks_uri: Some("https://appleid.apple.com/auth/keys"),
            scopes: &["openid", "name", "email"],
            picture: None,
            token_auth: TokenAuth::Post,
            form_post: true,
            icon: "apple.svg",
            ..OIDC
        },
        ProviderKind::Github => Preset {
            name: "GitHub",
            authorization_endpoint: Some("https://github.com/login/oauth/authorize"),
            token_endpoint: Some("https://github.com/login/oauth/access_token"),
            userinfo_endpoint: Some("https://api.github.com/user"),
            emails_endpoint: Some("https://api.github.com/user/emails"),
            scopes: &["read:user", "user:email"],
            subject: "id",
            // Filled from the primary verified address of /user/emails.
            email: Some("email"),
            email_verified: Some("email_verified"),
            name_claim: "name",
            picture: Some("avatar_url"),
            icon: "github.svg",
            ..OIDC
        },
        ProviderKind::Facebook => Preset {
            name: "Facebook",
            authorization_endpoint: Some("https://www.facebook.com/v19.0/dialog/oauth"),
            token_endpoint: Some("https://graph.facebook.com/v19.0/oauth/access_token"),
            userinfo_endpoint: Some("https://graph.facebook.com/me?fields=id,name,email,picture"),
            scopes: &["email", "public_profile"],
            subject: "id",
            email_verified: None,
            picture: Some("picture.data.url"),
            token_auth: TokenAuth::Post,
            icon: "facebook.svg",
            ..OIDC
        },
        ProviderKind::Spotify => Preset {
            name: "Spotify",
            authorization_endpoint: Some("https://accounts.spotify.com/authorize"),
            token_endpoint: Some("https://accounts.spotify.com/api/token"),
            userinfo_endpoint: Some("https://api.spotify.com/v1/me"),
            scopes: &["user-read-email", "user-read-private"],
            subject: "id",
            email_verified: None,
            name_claim: "display_name",
            picture: Some("images.0.url"),
            icon: "spotify.svg",
            ..OIDC
        },
        ProviderKind::Discord => Preset {
            name: "Discord",
            authorization_endpoint: Some("https://discord.com/oauth2/authorize"),
            token_endpoint: Some("https://discord.com/api/oauth2/token"),
            userinfo_endpoint: Some("https://discord.com/api/users/@me"),
            scopes: &["identify", "email"],
            subject: "id",
            email_verified: Some("verified"),
            name_claim: "global_name",
            picture: None,
            icon: "discord.svg",
            ..OIDC
        },
        ProviderKind::Twitter => Preset {
            name: "X",
            authorization_endpoint: Some("https://twitter.com/i/oauth2/authorize"),
            token_endpoint: Some("https://api.twitter.com/2/oauth2/token"),
            userinfo_endpoint: Some("https://api.twitter.com/2/users/me?user.fields=profile_image_url"),
            scopes: &["users.read", "tweet.read"],
            subject: "data.id",
            // X gives no email address.
            email: None,
            email_verified: None,
            name_claim: "data.name",
            picture: Some("data.profile_image_url"),
            icon: "twitter.svg",
            ..OIDC
        },
    }
}
