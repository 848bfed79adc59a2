-- Foundation schema: signing keys, clients, users.
-- Portable conventions shared with the Postgres migrations: timestamps are unix
-- seconds in integer columns, lists are JSON text, flags are booleans here and
-- integers on SQLite (both bind from a Rust bool).

-- One row per signing key. A key signs from `activates_at` until a newer key of
-- the same algorithm activates; it is published from creation until every token
-- it could have signed has expired. Private keys are sealed with the master key.
CREATE TABLE signing_keys (
    kid                TEXT PRIMARY KEY,
    alg                TEXT NOT NULL,
    generation         BIGINT NOT NULL,
    public_jwk         TEXT NOT NULL,
    private_key_sealed BYTEA NOT NULL,
    created_at         BIGINT NOT NULL,
    activates_at       BIGINT NOT NULL,
    UNIQUE (alg, generation)
);

CREATE TABLE clients (
    client_id                  TEXT PRIMARY KEY,
    name                       TEXT NOT NULL,
    -- hex SHA-256 of a high-entropy random secret; NULL for public clients
    secret_hash                TEXT,
    is_public                  BOOLEAN NOT NULL,
    first_party                BOOLEAN NOT NULL,
    redirect_uris              TEXT NOT NULL,
    post_logout_redirect_uris  TEXT NOT NULL,
    web_origins                TEXT NOT NULL,
    grant_types                TEXT NOT NULL,
    id_token_alg               TEXT,
    token_endpoint_auth_method TEXT NOT NULL,
    backchannel_logout_uri     TEXT,
    frontchannel_logout_uri    TEXT,
    -- 'cli' for clients managed with `sesame client`, 'config' for static clients
    source                     TEXT NOT NULL,
    created_at                 BIGINT NOT NULL,
    updated_at                 BIGINT NOT NULL
);

CREATE TABLE users (
    user_id          TEXT PRIMARY KEY,
    email            TEXT NOT NULL,
    -- lower-cased email: uniqueness and lookups are case-insensitive
    email_normalized TEXT NOT NULL UNIQUE,
    email_verified   BOOLEAN NOT NULL,
    name             TEXT,
    password_hash    TEXT,
    disabled         BOOLEAN NOT NULL,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL
);
