-- APIs (resource servers) with their permissions, roles carrying permissions,
-- groups holding users, which APIs each client may call, and which users may
-- use a client at all.

CREATE TABLE apis (
    -- the audience of its access tokens, e.g. https://api.example.com
    identifier     TEXT PRIMARY KEY,
    name           TEXT NOT NULL,
    -- JSON list of the permissions it defines
    permissions    TEXT NOT NULL,
    -- NULL: tokens.access_token_ttl_secs
    token_ttl_secs INTEGER,
    -- NULL: the signing default
    alg            TEXT,
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL
);

CREATE TABLE roles (
    name       TEXT PRIMARY KEY,
    created_at INTEGER NOT NULL
);

CREATE TABLE role_permissions (
    role       TEXT NOT NULL REFERENCES roles (name) ON DELETE CASCADE,
    api        TEXT NOT NULL REFERENCES apis (identifier) ON DELETE CASCADE,
    permission TEXT NOT NULL,
    PRIMARY KEY (role, api, permission)
);
CREATE INDEX role_permissions_api ON role_permissions (api);

-- ("groups" is a keyword in SQL window frames.)
CREATE TABLE user_groups (
    name       TEXT PRIMARY KEY,
    created_at INTEGER NOT NULL
);

CREATE TABLE group_members (
    group_name TEXT NOT NULL REFERENCES user_groups (name) ON DELETE CASCADE,
    user_id    TEXT NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
    PRIMARY KEY (group_name, user_id)
);
CREATE INDEX group_members_user_id ON group_members (user_id);

CREATE TABLE group_roles (
    group_name TEXT NOT NULL REFERENCES user_groups (name) ON DELETE CASCADE,
    role       TEXT NOT NULL REFERENCES roles (name) ON DELETE CASCADE,
    PRIMARY KEY (group_name, role)
);

CREATE TABLE user_roles (
    user_id TEXT NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
    role    TEXT NOT NULL REFERENCES roles (name) ON DELETE CASCADE,
    PRIMARY KEY (user_id, role)
);
CREATE INDEX user_roles_role ON user_roles (role);

-- The permissions of an API a client may ask for.
CREATE TABLE client_apis (
    client_id   TEXT NOT NULL,
    api         TEXT NOT NULL REFERENCES apis (identifier) ON DELETE CASCADE,
    permissions TEXT NOT NULL,
    PRIMARY KEY (client_id, api)
);

-- Per-application access: users need one of these roles (direct or through a
-- group) or to be in one of these groups; both empty means everyone.
ALTER TABLE clients ADD COLUMN require_roles TEXT NOT NULL DEFAULT '[]';
ALTER TABLE clients ADD COLUMN require_groups TEXT NOT NULL DEFAULT '[]';
-- The API a token is for when a request names none.
ALTER TABLE clients ADD COLUMN default_audience TEXT;
-- Tokens carry the user's roles and groups even when the scope does not ask.
ALTER TABLE clients ADD COLUMN rbac_claims INTEGER NOT NULL DEFAULT 0;

-- The API a grant's access tokens are for (NULL: the client itself).
ALTER TABLE auth_codes ADD COLUMN audience TEXT;
ALTER TABLE refresh_tokens ADD COLUMN audience TEXT;
