-- Emailed links: sign-up, email verification, email change and password
-- reset. Only the SHA-256 of a link's token is kept; a newer link for the
-- same account and purpose replaces the older one, and a link is deleted when
-- it is used.
CREATE TABLE email_tokens (
    token_hash    TEXT PRIMARY KEY,
    user_id       TEXT NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
    -- signup | verify | change_email | reset
    purpose       TEXT NOT NULL,
    -- the address the link was sent to (the new one for change_email)
    email         TEXT NOT NULL,
    -- sign-up: the password chosen, set on the account only when the link is followed
    password_hash TEXT,
    -- the pending authorization to continue after the link, if any
    request_id    TEXT,
    created_at    INTEGER NOT NULL,
    expires_at    INTEGER NOT NULL
);
CREATE INDEX email_tokens_user ON email_tokens (user_id, purpose);
CREATE INDEX email_tokens_expires ON email_tokens (expires_at);

-- Where and with what a session was started, for the account page.
ALTER TABLE sessions ADD COLUMN ip TEXT;
ALTER TABLE sessions ADD COLUMN user_agent TEXT;
