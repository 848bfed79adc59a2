-- Embedded login (auth0-js cross-origin authentication): a password checked at
-- /co/authenticate becomes a short-lived login ticket, spent once by the
-- /authorize request that carries it, from the browser that holds its verifier.
CREATE TABLE login_tickets (
    ticket_hash   TEXT PRIMARY KEY,
    client_id     TEXT NOT NULL,
    user_id       TEXT NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
    co_id         TEXT NOT NULL,
    verifier_hash TEXT NOT NULL,
    -- SHA-256 of the password hash the password matched: a change meanwhile voids the ticket.
    password_seen TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    expires_at    BIGINT NOT NULL
);
CREATE INDEX login_tickets_expires_at ON login_tickets (expires_at);

-- DPoP proofs already presented (RFC 9449 §11.1), shared by every replica, kept
-- until the proof's acceptance window has passed.
CREATE TABLE dpop_proofs (
    proof_hash TEXT PRIMARY KEY,
    expires_at BIGINT NOT NULL
);
CREATE INDEX dpop_proofs_expires_at ON dpop_proofs (expires_at);

-- The key a code (dpop_jkt at /authorize) or a refresh token is bound to.
ALTER TABLE auth_codes ADD COLUMN dpop_jkt TEXT;
ALTER TABLE refresh_tokens ADD COLUMN dpop_jkt TEXT;
ALTER TABLE clients ADD COLUMN require_dpop BOOLEAN NOT NULL DEFAULT FALSE;
-- Embedded login (auth0-js) allowed from the client's web origins, and the
-- application page its crossOriginVerification() runs on.
ALTER TABLE clients ADD COLUMN cross_origin_authentication BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE clients ADD COLUMN cross_origin_loc TEXT;
