-- Login sessions, pending authorization requests, consents, codes, grants and
-- refresh tokens. Secrets (session ids, codes, refresh tokens) are stored only
-- as SHA-256 hashes.

-- One login session per browser, shared by every client (SSO).
CREATE TABLE sessions (
    id_hash         TEXT PRIMARY KEY,
    -- public session id: the `sid` claim, safe to hand to clients
    sid             TEXT NOT NULL UNIQUE,
    user_id         TEXT NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
    auth_time       BIGINT NOT NULL,
    amr             TEXT NOT NULL,
    acr             TEXT,
    created_at      BIGINT NOT NULL,
    last_seen_at    BIGINT NOT NULL,
    idle_expires_at BIGINT NOT NULL,
    expires_at      BIGINT NOT NULL
);
CREATE INDEX sessions_user_id ON sessions (user_id);
CREATE INDEX sessions_expires_at ON sessions (expires_at);

-- The clients that used a session (for logout).
CREATE TABLE session_clients (
    sid        TEXT NOT NULL REFERENCES sessions (sid) ON DELETE CASCADE,
    client_id  TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (sid, client_id)
);

-- A validated /authorize request waiting for the login box or consent. The
-- browser that started it is bound through a hash of its CSRF cookie.
CREATE TABLE auth_requests (
    id           TEXT PRIMARY KEY,
    browser_hash TEXT NOT NULL,
    client_id    TEXT NOT NULL,
    params       TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL
);
CREATE INDEX auth_requests_expires_at ON auth_requests (expires_at);

-- Scopes a user granted a client, remembered for the next request.
CREATE TABLE consents (
    user_id    TEXT NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
    client_id  TEXT NOT NULL,
    scopes     TEXT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, client_id)
);

-- Grants that were revoked. A grant is everything issued from one
-- authorization (a code, then a refresh-token family); its id is carried by
-- the code, the refresh tokens and (as `gid`) the access tokens. Only
-- revocations are written, so issuing a code costs no extra row.
CREATE TABLE revoked_grants (
    grant_id   TEXT PRIMARY KEY,
    revoked_at BIGINT NOT NULL
);

CREATE TABLE auth_codes (
    code_hash      TEXT PRIMARY KEY,
    grant_id       TEXT NOT NULL,
    client_id      TEXT NOT NULL,
    user_id        TEXT NOT NULL,
    sid            TEXT NOT NULL,
    redirect_uri   TEXT NOT NULL,
    scope          TEXT NOT NULL,
    nonce          TEXT,
    code_challenge TEXT,
    auth_time      BIGINT NOT NULL,
    amr            TEXT NOT NULL,
    acr            TEXT,
    created_at     BIGINT NOT NULL,
    expires_at     BIGINT NOT NULL,
    used_at        BIGINT
);

-- Rotating refresh tokens. Each use marks the row used and records its
-- successor (sealed) so a concurrent duplicate within the grace window gets the
-- same successor; any other reuse revokes the grant.
CREATE TABLE refresh_tokens (
    token_hash       TEXT PRIMARY KEY,
    grant_id         TEXT NOT NULL,
    client_id        TEXT NOT NULL,
    user_id          TEXT NOT NULL,
    sid              TEXT,
    scope            TEXT NOT NULL,
    auth_time        BIGINT NOT NULL,
    amr              TEXT NOT NULL,
    offline          BOOLEAN NOT NULL,
    created_at       BIGINT NOT NULL,
    expires_at       BIGINT NOT NULL,
    grant_expires_at BIGINT NOT NULL,
    used_at          BIGINT,
    successor_sealed BYTEA
);
CREATE INDEX refresh_tokens_grant_id ON refresh_tokens (grant_id);
