-- Federation: identities at upstream identity providers, the state of a
-- round trip to one, and users without an email (an upstream that has none).

ALTER TABLE users ALTER COLUMN email DROP NOT NULL;
ALTER TABLE users ALTER COLUMN email_normalized DROP NOT NULL;
ALTER TABLE users ADD COLUMN picture TEXT;

-- One row per account at an upstream provider, keyed the way the provider
-- keys its users (Microsoft: tenant and object id).
CREATE TABLE identities (
    provider       TEXT NOT NULL,
    subject        TEXT NOT NULL,
    user_id        TEXT NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
    email          TEXT,
    email_verified BOOLEAN NOT NULL,
    -- JSON: the mapped profile claims from the last login
    profile        TEXT NOT NULL,
    created_at     BIGINT NOT NULL,
    last_login_at  BIGINT NOT NULL,
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
    created_at    BIGINT NOT NULL,
    expires_at    BIGINT NOT NULL,
    used_at       BIGINT
);
CREATE INDEX federation_states_expires_at ON federation_states (expires_at);

-- How the session was started: the provider id, NULL for a password.
ALTER TABLE sessions ADD COLUMN idp TEXT;
ALTER TABLE auth_codes ADD COLUMN idp TEXT;
ALTER TABLE refresh_tokens ADD COLUMN idp TEXT;
