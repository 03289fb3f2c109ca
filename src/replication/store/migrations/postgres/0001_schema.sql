-- The whole schema of the PostgreSQL store, shared by every node of a
-- fleet (see src/store/mod.rs and ARCHITECTURE.md). Keys use the "C"
-- collation: byte order, as in SQLite, for pagination and export.

CREATE TABLE codes (
    code         TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    appid        TEXT    NOT NULL,
    path         TEXT    NOT NULL,
    query        TEXT    NOT NULL,
    env_version  TEXT    NOT NULL,
    fallback_url TEXT,
    valid_from   BIGINT,
    valid_until  BIGINT,
    disabled     BOOLEAN NOT NULL,
    tags         TEXT    NOT NULL DEFAULT '',
    created_at   BIGINT  NOT NULL,
    updated_at   BIGINT  NOT NULL
);

CREATE TABLE rules (
    prefix_key   TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    prefix       TEXT    NOT NULL,
    appid        TEXT    NOT NULL,
    path         TEXT    NOT NULL,
    query        TEXT    NOT NULL,
    env_version  TEXT    NOT NULL,
    fallback_url TEXT,
    valid_from   BIGINT,
    valid_until  BIGINT,
    disabled     BOOLEAN NOT NULL,
    tags         TEXT    NOT NULL DEFAULT '',
    created_at   BIGINT  NOT NULL,
    updated_at   BIGINT  NOT NULL
);

CREATE TABLE hosts (
    host       TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    unmatched  TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE files (
    file_key   TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    host       TEXT   NOT NULL,
    path       TEXT   NOT NULL,
    body       TEXT   NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE entry_tags (
    tag  TEXT COLLATE "C" NOT NULL,
    kind TEXT NOT NULL,
    key  TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (tag, kind, key)
);
CREATE INDEX entry_tags_by_entry ON entry_tags (kind, key);

-- One row; every write transaction bumps `position` first, which takes the
-- row's lock and so serialises writers in commit order.
CREATE TABLE meta (
    id          INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
    epoch       TEXT    NOT NULL,
    position    BIGINT  NOT NULL,
    initialised BOOLEAN NOT NULL
);
INSERT INTO meta (id, epoch, position, initialised)
VALUES (1, md5(random()::text || clock_timestamp()::text), 0, FALSE);

CREATE TABLE changes (
    position     BIGINT  NOT NULL,
    seq          INTEGER NOT NULL,
    kind         TEXT    NOT NULL,
    key          TEXT    NOT NULL,
    line         TEXT,
    committed_at BIGINT  NOT NULL,
    PRIMARY KEY (position, seq)
);

CREATE TABLE scan_counts (
    kind  TEXT    NOT NULL,
    key   TEXT COLLATE "C" NOT NULL,
    day   INTEGER NOT NULL,
    class TEXT    NOT NULL,
    count BIGINT  NOT NULL,
    PRIMARY KEY (kind, key, day, class)
);
CREATE INDEX scan_counts_by_day ON scan_counts (day);
