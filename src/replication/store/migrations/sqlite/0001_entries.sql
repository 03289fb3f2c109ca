-- Codes and rules, one row each, in portable SQL (SQLite now, PostgreSQL later).
-- Times are UNIX milliseconds (created_at, updated_at) or seconds (validity).
CREATE TABLE codes (
    code         TEXT    NOT NULL PRIMARY KEY,
    appid        TEXT    NOT NULL,
    path         TEXT    NOT NULL,
    query        TEXT    NOT NULL,
    env_version  TEXT    NOT NULL,
    fallback_url TEXT,
    valid_from   BIGINT,
    valid_until  BIGINT,
    disabled     BOOLEAN NOT NULL,
    created_at   BIGINT  NOT NULL,
    updated_at   BIGINT  NOT NULL
);

-- prefix_key is the normalized prefix (see src/url_key.rs): two spellings of
-- one prefix are one rule.
CREATE TABLE rules (
    prefix_key   TEXT    NOT NULL PRIMARY KEY,
    prefix       TEXT    NOT NULL,
    appid        TEXT    NOT NULL,
    path         TEXT    NOT NULL,
    query        TEXT    NOT NULL,
    env_version  TEXT    NOT NULL,
    fallback_url TEXT,
    valid_from   BIGINT,
    valid_until  BIGINT,
    disabled     BOOLEAN NOT NULL,
    created_at   BIGINT  NOT NULL,
    updated_at   BIGINT  NOT NULL
);
