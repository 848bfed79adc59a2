-- Hardening: per-client refresh-token leeway and introspection scope, and the
-- indexes that ending a session or a user's sessions needs.

-- Seconds a rotated refresh token may be presented again and get the same
-- successor; NULL means the global tokens.refresh_reuse_grace_secs.
ALTER TABLE clients ADD COLUMN refresh_leeway_secs INTEGER;
-- May introspect tokens issued to other clients (an API gateway).
ALTER TABLE clients ADD COLUMN introspect_any INTEGER NOT NULL DEFAULT 0;

-- Whether the authorization request carried redirect_uri: /token then requires
-- it (RFC 6749 §4.1.3).
ALTER TABLE auth_codes ADD COLUMN redirect_uri_sent INTEGER NOT NULL DEFAULT 0;

CREATE INDEX refresh_tokens_sid ON refresh_tokens (sid);
CREATE INDEX refresh_tokens_user_id ON refresh_tokens (user_id);
CREATE INDEX auth_codes_sid ON auth_codes (sid);
-- The janitor wipes sealed successors once no leeway can need them.
CREATE INDEX refresh_tokens_sealed ON refresh_tokens (used_at) WHERE successor_sealed IS NOT NULL;

-- Sessions ended without the user's browser (password change, disabled user,
-- admin): the browser gets the front-channel logout iframes the next time it
-- reaches the login box or the logout endpoint with the ended session's cookie.
CREATE TABLE ended_sessions (
    id_hash    TEXT PRIMARY KEY,
    sid        TEXT NOT NULL,
    client_ids TEXT NOT NULL,
    ended_at   INTEGER NOT NULL
);
CREATE INDEX ended_sessions_ended_at ON ended_sessions (ended_at);
