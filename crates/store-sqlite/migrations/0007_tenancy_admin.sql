-- Tenancy administration: secret keys get an id, a name and a revocation time; projects get
-- personal access tokens; the instance gets its admin token. Tokens, like keys, are stored only as
-- the SHA-256 of their text.

-- SQLite cannot add a NOT NULL column without a default, so the table is rebuilt.
-- Keys made before this migration get an id as new keys do, `key_` and a ULID in lower case: the
-- key's creation time in ten base-32 characters, then the first 16 hex characters of its hash
-- (hex digits are base-32 digits), so ids are unique, parse as ULIDs and sort by creation time.
CREATE TABLE api_keys_new (
    key_hash TEXT PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    key_prefix TEXT NOT NULL,
    env_id TEXT NOT NULL REFERENCES environments (id),
    name TEXT,
    created_at INTEGER NOT NULL,
    revoked_at INTEGER
);

INSERT INTO api_keys_new (key_hash, id, key_prefix, env_id, name, created_at, revoked_at)
SELECT
    key_hash,
    'key_'
        || substr('0123456789abcdefghjkmnpqrstvwxyz', ((created_at >> 45) & 31) + 1, 1)
        || substr('0123456789abcdefghjkmnpqrstvwxyz', ((created_at >> 40) & 31) + 1, 1)
        || substr('0123456789abcdefghjkmnpqrstvwxyz', ((created_at >> 35) & 31) + 1, 1)
        || substr('0123456789abcdefghjkmnpqrstvwxyz', ((created_at >> 30) & 31) + 1, 1)
        || substr('0123456789abcdefghjkmnpqrstvwxyz', ((created_at >> 25) & 31) + 1, 1)
        || substr('0123456789abcdefghjkmnpqrstvwxyz', ((created_at >> 20) & 31) + 1, 1)
        || substr('0123456789abcdefghjkmnpqrstvwxyz', ((created_at >> 15) & 31) + 1, 1)
        || substr('0123456789abcdefghjkmnpqrstvwxyz', ((created_at >> 10) & 31) + 1, 1)
        || substr('0123456789abcdefghjkmnpqrstvwxyz', ((created_at >> 5) & 31) + 1, 1)
        || substr('0123456789abcdefghjkmnpqrstvwxyz', ((created_at >> 0) & 31) + 1, 1)
        || substr(lower(key_hash), 1, 16),
    key_prefix,
    env_id,
    NULL,
    created_at,
    NULL
FROM api_keys;

DROP TABLE api_keys;

ALTER TABLE api_keys_new RENAME TO api_keys;

CREATE INDEX api_keys_by_env ON api_keys (env_id, id);

CREATE TABLE access_tokens (
    id TEXT PRIMARY KEY,
    token_hash TEXT NOT NULL UNIQUE,
    token_prefix TEXT NOT NULL,
    project_id TEXT NOT NULL REFERENCES projects (id),
    name TEXT,
    created_at INTEGER NOT NULL,
    revoked_at INTEGER
);

CREATE INDEX access_tokens_by_project ON access_tokens (project_id, id);

-- One row at most: the instance has one admin token.
CREATE TABLE admin_tokens (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    token_hash TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
