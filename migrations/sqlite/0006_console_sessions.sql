-- Console sign-ins: a session per signed-in browser. The id lives only in the browser's
-- cookie; the hub keeps its SHA-256. A session acts as its key, and only while that key
-- is not revoked (the lookup joins api_keys), so a revoked key's sessions end at once.
CREATE TABLE console_sessions (
    session_hash  TEXT PRIMARY KEY,
    key_id        TEXT NOT NULL REFERENCES api_keys (key_id),
    csrf_token    TEXT NOT NULL,
    created       TEXT NOT NULL,
    expires       TEXT NOT NULL
);
-- Purging ended sessions.
CREATE INDEX console_sessions_expires ON console_sessions (expires);
