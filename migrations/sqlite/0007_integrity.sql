-- Sign-up links carry the name typed with them, set on the account only
-- when the link is followed (an unfinished sign-up reserves nothing).
ALTER TABLE email_tokens ADD COLUMN name TEXT;
