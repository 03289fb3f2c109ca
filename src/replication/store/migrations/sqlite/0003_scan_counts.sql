-- Scan counts per entry, UTC day and client class. Nodes add their
-- increments (never overwrite), so counts sum across a fleet.
-- kind: 'code', 'rule', or 'host' (404s on a host); key as in the entries.
CREATE TABLE scan_counts (
    kind  TEXT    NOT NULL,
    key   TEXT    NOT NULL,
    day   INTEGER NOT NULL,
    class TEXT    NOT NULL,
    count BIGINT  NOT NULL,
    PRIMARY KEY (kind, key, day, class)
);
CREATE INDEX scan_counts_by_day ON scan_counts (day);
