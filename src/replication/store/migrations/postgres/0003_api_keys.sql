-- API keys: the secret only as its SHA-256 (hex); scopes as JSON
-- ({"tags":[…],"hosts":[…],"appids":[…]}); times in UNIX milliseconds.
CREATE TABLE api_keys (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    role TEXT NOT NULL,
    scopes TEXT NOT NULL,
    secret_hash TEXT NOT NULL,
    previous_hash TEXT,
    previous_until BIGINT,
    created_at BIGINT NOT NULL,
    expires_at BIGINT,
    last_used_at BIGINT
);
