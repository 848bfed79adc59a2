-- Password-attempt budgets shared by every replica: one row per budget key
-- (a SHA-256 of the account, the address, or both), counting attempts in the
-- current one-minute window and the one before it (a sliding window).
CREATE TABLE attempts (
    bucket TEXT PRIMARY KEY,
    window_start BIGINT NOT NULL,
    n BIGINT NOT NULL,
    prev_n BIGINT NOT NULL
);
CREATE INDEX attempts_window_start ON attempts (window_start);

-- Addresses an account signed in from: its account-wide budget, once spent by
-- strangers, never stops them.
CREATE TABLE known_addresses (
    bucket TEXT PRIMARY KEY,
    seen_at BIGINT NOT NULL
);
CREATE INDEX known_addresses_seen_at ON known_addresses (seen_at);

-- The janitor's deletes, each on an index (no table scan at any size).
CREATE INDEX sessions_idle_expires_at ON sessions (idle_expires_at);
CREATE INDEX refresh_tokens_grant_expires_at ON refresh_tokens (grant_expires_at);
CREATE INDEX auth_codes_expires_at ON auth_codes (expires_at);
CREATE INDEX revoked_grants_revoked_at ON revoked_grants (revoked_at);
