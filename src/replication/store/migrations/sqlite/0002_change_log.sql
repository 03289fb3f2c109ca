-- Tags, host settings, verification files, and the commit-ordered change
-- log that every node's table follows (see src/store/mod.rs).
ALTER TABLE codes ADD COLUMN tags TEXT NOT NULL DEFAULT '';
ALTER TABLE rules ADD COLUMN tags TEXT NOT NULL DEFAULT '';

CREATE TABLE hosts (
    host       TEXT   NOT NULL PRIMARY KEY,
    unmatched  TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- file_key is host || path (the path starts with '/').
CREATE TABLE files (
    file_key   TEXT   NOT NULL PRIMARY KEY,
    host       TEXT   NOT NULL,
    path       TEXT   NOT NULL,
    body       TEXT   NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE entry_tags (
    tag  TEXT NOT NULL,
    kind TEXT NOT NULL,
    key  TEXT NOT NULL,
    PRIMARY KEY (tag, kind, key)
);
CREATE INDEX entry_tags_by_entry ON entry_tags (kind, key);

-- One row. position: the last committed write; every write transaction
-- bumps it first, which serialises writers in commit order.
CREATE TABLE meta (
    id          INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
    epoch       TEXT    NOT NULL,
    position    BIGINT  NOT NULL,
    initialised BOOLEAN NOT NULL
);
INSERT INTO meta (id, epoch, position, initialised)
SELECT 1, lower(hex(randomblob(16))), 0,
       EXISTS (SELECT 1 FROM codes) OR EXISTS (SELECT 1 FROM rules);

-- line: the entry's table-file JSON; NULL is a tombstone (or a resync).
CREATE TABLE changes (
    position     BIGINT  NOT NULL,
    seq          INTEGER NOT NULL,
    kind         TEXT    NOT NULL,
    key          TEXT    NOT NULL,
    line         TEXT,
    committed_at BIGINT  NOT NULL,
    PRIMARY KEY (position, seq)
);
