-- The audit log: one line per change, written in the change's own
-- transaction. `id` grows in commit order (writes are serialised by the
-- position row).
CREATE TABLE audit (
    id BIGSERIAL PRIMARY KEY,
    at BIGINT NOT NULL,
    key_id TEXT NOT NULL,
    key_name TEXT NOT NULL,
    client TEXT,
    action TEXT NOT NULL,
    kind TEXT NOT NULL,
    entry TEXT NOT NULL,
    before TEXT,
    after TEXT,
    position BIGINT NOT NULL
);
CREATE INDEX audit_by_entry ON audit (entry, id);
CREATE INDEX audit_by_key ON audit (key_id, id);
CREATE INDEX audit_by_time ON audit (at);
