-- One-time links that create an administrator (`sesame serve` with no
-- administrator yet, `sesame admin create-link`): stored by hash, spent once
-- by a conditional DELETE. A link `serve` logged (origin 'serve') stops
-- working once anybody holds sesame-admin.
CREATE TABLE setup_links (
    token_hash TEXT PRIMARY KEY,
    origin     TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX setup_links_expires_at ON setup_links (expires_at);
