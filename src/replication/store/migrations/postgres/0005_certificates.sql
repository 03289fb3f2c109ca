-- TLS certificates obtained with ACME (`issuer`: the directory URL that
-- issued it), served by every node, and the ACME account per directory.
-- Times in UNIX seconds (`updated_at`, `created_at`, `until_ms`: ms).
CREATE TABLE certificates (
    name TEXT PRIMARY KEY,
    chain_pem TEXT NOT NULL,
    key_pem TEXT NOT NULL,
    not_before BIGINT NOT NULL,
    not_after BIGINT NOT NULL,
    renew_after BIGINT NOT NULL,
    issuer TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE TABLE acme_accounts (
    directory TEXT PRIMARY KEY,
    credentials TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
-- Which node orders certificates (one at a time in a fleet): taken for a
-- while, renewed while it works, taken over once it lapsed.
CREATE TABLE acme_lease (
    id BIGINT PRIMARY KEY CHECK (id = 1),
    holder TEXT NOT NULL,
    until_ms BIGINT NOT NULL
);
