//! The console's templates and what they show.

use askama::Template;

use super::When;
use crate::http::page::Brand;
use crate::state::AppState;

/// The frame of every console page: the navigation and who is signed in.
pub struct Nav {
    pub brand: Brand,
    /// `/admin` under the issuer's path.
    pub base: String,
    /// Which section is open (`users`, `log`, …).
    pub here: &'static str,
    pub who: String,
    pub account: String,
    pub csrf: String,
}

impl Nav {
    pub fn anonymous(state: &AppState) -> Nav {
        Nav {
            brand: state.brand.clone(),
            base: super::path(state, ""),
            here: "",
            who: String::new(),
            account: format!("{}{}", state.issuer.path_prefix(), crate::clients::ACCOUNT_PAGE),
            csrf: String::new(),
        }
    }

    pub fn links(&self) -> Vec<(&'static str, String, &'static str)> {
        [
            ("overview", "", "Overview"),
            ("users", "/users", "Users"),
            ("log", "/log", "Log"),
            ("apps", "/apps", "Applications"),
            ("apis", "/apis", "APIs"),
            ("roles", "/roles", "Roles"),
            ("groups", "/groups", "Groups"),
            ("providers", "/providers", "Providers"),
            ("keys", "/keys", "Signing keys"),
        ]
        .into_iter()
        .map(|(id, p, label)| (id, format!("{}{p}", self.base), label))
        .collect()
    }
}

#[derive(Template)]
#[template(path = "admin/message.html")]
pub struct Message {
    pub nav: Nav,
    pub title: String,
    pub text: String,
    pub back: String,
}

/// One audit event as a row (and its full record, opened in place).
pub struct EventRow {
    pub id: i64,
    pub when: When,
    pub kind: String,
    pub outcome: String,
    pub failed: bool,
    pub reason: String,
    pub user: String,
    pub user_link: String,
    pub client: String,
    pub ip: String,
    pub user_agent: String,
    pub method: String,
    pub actor: String,
    /// An administrator's change: what was done (`details.operation`).
    pub operation: String,
    /// Every field, pretty-printed.
    pub record: String,
}

#[derive(Template)]
#[template(path = "admin/overview.html")]
pub struct Overview {
    pub nav: Nav,
    pub sign_ins: i64,
    pub failures: i64,
    pub sign_ups: i64,
    pub sessions: i64,
    pub changes: Vec<EventRow>,
    pub failed: Vec<EventRow>,
}

pub struct UserRow {
    pub user_id: String,
    pub email: String,
    pub name: String,
    pub verified: bool,
    pub blocked: bool,
    pub created: When,
}

#[derive(Template)]
#[template(path = "admin/users.html")]
pub struct Users {
    pub nav: Nav,
    pub q: String,
    pub by: String,
    pub users: Vec<UserRow>,
    pub next: Option<String>,
    pub notice: Option<String>,
    /// No match for an address: its attempts in the log (unknown addresses too).
    pub log_link: Option<String>,
}

pub struct SessionRowView {
    pub sid: String,
    pub started: When,
    pub last_seen: When,
    pub ip: String,
    pub device: String,
    pub how: String,
}

pub struct IdentityView {
    pub provider: String,
    pub subject: String,
    pub email: String,
    pub last_login: When,
}

pub struct FactorView {
    pub factor_id: String,
    pub kind: String,
    pub name: String,
    pub added: When,
}

pub struct ConsentView {
    pub client: String,
    pub scopes: String,
    pub granted: When,
}

#[derive(Template)]
#[template(path = "admin/user.html")]
pub struct UserPage {
    pub nav: Nav,
    pub notice: Option<String>,
    pub user: UserRow,
    pub updated: When,
    pub has_password: bool,
    pub identities: Vec<IdentityView>,
    pub direct_roles: Vec<String>,
    pub roles: Vec<String>,
    pub groups: Vec<String>,
    pub all_roles: Vec<String>,
    pub all_groups: Vec<String>,
    pub sessions: Vec<SessionRowView>,
    pub consents: Vec<ConsentView>,
    pub factors: Vec<FactorView>,
    pub recovery_codes_left: i64,
    pub events: Vec<EventRow>,
    pub history: String,
    pub write_users: bool,
    pub write_roles: bool,
    pub read_audit: bool,
}

#[derive(Template)]
#[template(path = "admin/log.html")]
pub struct Log {
    pub nav: Nav,
    pub title: String,
    pub user: String,
    pub client: String,
    pub kind: String,
    pub outcome: String,
    pub ip: String,
    pub from: String,
    pub to: String,
    pub tzo: String,
    /// A duration back from now (`24h`), as the overview's links give it.
    pub since: String,
    pub kinds: Vec<String>,
    pub clients: Vec<(String, String)>,
    pub events: Vec<EventRow>,
    pub next: Option<String>,
    pub live: bool,
    pub live_url: String,
    pub newest: i64,
    pub error: Option<String>,
}

#[derive(Template)]
#[template(path = "admin/log_rows.html")]
pub struct LogRows {
    pub events: Vec<EventRow>,
}

pub struct AppRow {
    pub client_id: String,
    pub name: String,
    pub kind: &'static str,
    pub from_config: bool,
}

#[derive(Template)]
#[template(path = "admin/apps.html")]
pub struct Apps {
    pub nav: Nav,
    pub notice: Option<String>,
    pub apps: Vec<AppRow>,
    pub can_write: bool,
}

/// The application form: a new one, one to edit, or one to read.
#[derive(Template)]
#[template(path = "admin/app.html")]
pub struct AppForm {
    pub nav: Nav,
    pub notice: Option<String>,
    pub new: bool,
    /// Why it cannot change here (a config-file client), or nothing.
    pub read_only: Option<String>,
    pub can_write: bool,
    pub client_id: String,
    pub name: String,
    pub public: bool,
    pub first_party: bool,
    pub redirect_uris: String,
    pub post_logout_redirect_uris: String,
    pub web_origins: String,
    pub grant_types: Vec<(&'static str, &'static str, bool)>,
    pub id_token_alg: String,
    pub refresh_leeway: String,
    pub require_roles: String,
    pub require_groups: String,
    pub require_mfa: bool,
    pub apis: Vec<(String, String)>,
    pub all_apis: Vec<String>,
}

#[derive(Template)]
#[template(path = "admin/secret.html")]
pub struct SecretShown {
    pub nav: Nav,
    pub client_id: String,
    pub secret: String,
    pub next: String,
}

#[derive(Template)]
#[template(path = "admin/apis.html")]
pub struct ApisPage {
    pub nav: Nav,
    pub notice: Option<String>,
    pub apis: Vec<crate::manage::directory::ApiOut>,
    pub can_write: bool,
}

#[derive(Template)]
#[template(path = "admin/api.html")]
pub struct ApiPage {
    pub nav: Nav,
    pub notice: Option<String>,
    pub api: crate::manage::directory::ApiOut,
    pub permissions: String,
    pub ttl: String,
    pub alg: String,
    /// Applications that may call it, with their permissions.
    pub clients: Vec<(String, String)>,
    /// Roles carrying its permissions.
    pub roles: Vec<(String, String)>,
    pub can_write: bool,
}

#[derive(Template)]
#[template(path = "admin/roles.html")]
pub struct RolesPage {
    pub nav: Nav,
    pub notice: Option<String>,
    pub roles: Vec<(String, String)>,
    pub can_write: bool,
}

#[derive(Template)]
#[template(path = "admin/role.html")]
pub struct RolePage {
    pub nav: Nav,
    pub notice: Option<String>,
    pub name: String,
    /// (API, its permissions, the management API's in words).
    pub permissions: Vec<(String, String, String)>,
    pub users: Vec<(String, String)>,
    pub groups: Vec<String>,
    pub apis: Vec<String>,
    pub can_write: bool,
    pub built_in: bool,
}

#[derive(Template)]
#[template(path = "admin/groups.html")]
pub struct GroupsPage {
    pub nav: Nav,
    pub notice: Option<String>,
    pub groups: Vec<(String, usize, String)>,
    pub can_write: bool,
}

#[derive(Template)]
#[template(path = "admin/group.html")]
pub struct GroupPage {
    pub nav: Nav,
    pub notice: Option<String>,
    pub name: String,
    pub members: Vec<(String, String)>,
    pub roles: Vec<String>,
    pub other_roles: Vec<String>,
    pub can_write: bool,
}

pub struct ProviderRow {
    pub id: String,
    pub name: String,
    pub kind: String,
    pub enabled: bool,
    pub callback: String,
    pub issuer: String,
    /// The result of "Check", when this is its answer.
    pub check: Option<(bool, String)>,
}

#[derive(Template)]
#[template(path = "admin/providers.html")]
pub struct ProvidersPage {
    pub nav: Nav,
    pub providers: Vec<ProviderRow>,
}

pub struct KeyRow {
    pub kid: String,
    pub alg: String,
    pub generation: i64,
    pub status: String,
    pub created: When,
    pub activates: When,
}

#[derive(Template)]
#[template(path = "admin/keys.html")]
pub struct KeysPage {
    pub nav: Nav,
    pub notice: Option<String>,
    pub keys: Vec<KeyRow>,
    pub can_write: bool,
}

/// The setup link's form (in the login box's frame).
#[derive(Template)]
#[template(path = "admin_setup.html")]
pub struct SetupPage {
    pub brand: Brand,
    pub action: String,
    pub csrf: String,
    pub token: String,
    pub email: String,
    pub name: String,
    pub min_length: usize,
    pub error: Option<String>,
}
