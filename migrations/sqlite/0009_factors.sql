-- Second factors: authenticator apps (TOTP; the secret sealed with the master
-- key) and passkeys / security keys (WebAuthn; the credential as JSON).
CREATE TABLE factors (
    factor_id     TEXT PRIMARY KEY,
    user_id       TEXT NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
    kind          TEXT NOT NULL,
    name          TEXT NOT NULL,
    secret        TEXT NOT NULL,
    -- Passkeys: the credential id (base64url), unique across all accounts.
    credential_id TEXT,
    -- TOTP: the last time step accepted (a code is accepted once, on every replica).
    last_step     BIGINT NOT NULL DEFAULT 0,
    created_at    BIGINT NOT NULL,
    last_used_at  BIGINT
);
CREATE INDEX factors_user_id ON factors (user_id);
CREATE UNIQUE INDEX factors_credential_id ON factors (credential_id);

-- Recovery codes: SHA-256 of each, spent once.
CREATE TABLE recovery_codes (
    user_id    TEXT NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
    code_hash  TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    used_at    BIGINT,
    PRIMARY KEY (user_id, code_hash)
);

-- Browsers that proved a second factor and asked to be remembered.
CREATE TABLE remembered_browsers (
    id_hash    TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
    amr        TEXT NOT NULL,
    proven_at  BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX remembered_browsers_user_id ON remembered_browsers (user_id);
CREATE INDEX remembered_browsers_expires_at ON remembered_browsers (expires_at);

-- Enrolment and WebAuthn ceremony state, sealed, kept server-side and spent once.
CREATE TABLE ceremonies (
    id_hash    TEXT PRIMARY KEY,
    state      TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX ceremonies_expires_at ON ceremonies (expires_at);

-- When the session last proved a second factor, and a phishing-resistant one.
ALTER TABLE sessions ADD COLUMN mfa_at BIGINT;
ALTER TABLE sessions ADD COLUMN phr_at BIGINT;
-- The level a grant was issued at: a refresh never raises it.
ALTER TABLE refresh_tokens ADD COLUMN acr TEXT;
ALTER TABLE clients ADD COLUMN require_mfa INTEGER NOT NULL DEFAULT 0;
ALTER TABLE roles ADD COLUMN require_mfa INTEGER NOT NULL DEFAULT 0;
