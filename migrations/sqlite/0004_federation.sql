-- no-transaction
-- Federation: identities at upstream identity providers, the state of a
-- round trip to one, and users without an email (an upstream that has none).
-- SQLite cannot drop NOT NULL, so `users` is rebuilt (foreign keys off while
-- the table is swapped, checked again before the commit).
PRAGMA foreign_keys = OFF;
BEGIN;

CREATE TABLE users_new (
    user_id          TEXT PRIMARY KEY,
    -- NULL for a user who signs in only through a provider that gave no address
    email            TEXT,
    -- lower-cased email: uniqueness and lookups are case-insensitive
    email_normalized TEXT UNIQUE,
    email_verified   INTEGER NOT NULL,
    name             TEXT,
    password_hash    TEXT,
    disabled         INTEGER NOT NULL,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL,
    picture          TEXT
);
INSERT INTO users_new (user_id, email, email_normalized, email_verified, name, password_hash, disabled,
    created_at, updated_at)
SELECT user_id, email, email_normalized, email_verified, name, password_hash, disabled, created_at, updated_at
FROM users;
DROP TABLE users;
ALTER TABLE users_new RENAME TO users;

-- One row per account at an upstream provider, keyed the way the provider
-- keys its users (Microsoft: tenant and object id).
CREATE TABLE identities (
    provider       TEXT NOT NULL,
    subject        TEXT NOT NULL,
    user_id        TEXT NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
    email          TEXT,
    email_verified INTEGER NOT NULL,
    -- JSON: the mapped profile claims from the last login
    profile        TEXT NOT NULL,
    created_at     INTEGER NOT NULL,
    last_login_at  INTEGER NOT NULL,
    PRIMARY KEY (provider, subject)
);
CREATE INDEX identities_user_id ON identities (user_id);

-- A round trip to an upstream, found by the hash of its `state`, bound to the
-- browser (hash of its CSRF cookie) and to the pending authorization.
CREATE TABLE federation_states (
    state_hash    TEXT PRIMARY KEY,
    provider      TEXT NOT NULL,
    request_id    TEXT NOT NULL,
    browser_hash  TEXT NOT NULL,
    nonce         TEXT NOT NULL,
    pkce_verifier TEXT NOT NULL,
    -- a form_post answer kept until the browser comes back same-site
    response      TEXT,
    created_at    INTEGER NOT NULL,
    expires_at    INTEGER NOT NULL,
    used_at       INTEGER
);
CREATE INDEX federation_states_expires_at ON federation_states (expires_at);

-- How the session was started: the provider id, NULL for a password.
ALTER TABLE sessions ADD COLUMN idp TEXT;
ALTER TABLE auth_codes ADD COLUMN idp TEXT;
ALTER TABLE refresh_tokens ADD COLUMN idp TEXT;

PRAGMA foreign_key_check;
COMMIT;
PRAGMA foreign_keys = ON;
