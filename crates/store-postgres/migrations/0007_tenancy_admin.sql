-- Tenancy administration: secret keys get an id, a name and a revocation time; projects get
-- personal access tokens; the instance gets its admin token. Tokens, like keys, are stored only as
-- the SHA-256 of their text.

ALTER TABLE api_keys ADD COLUMN id TEXT COLLATE "C";
ALTER TABLE api_keys ADD COLUMN name TEXT;
ALTER TABLE api_keys ADD COLUMN revoked_at BIGINT;

-- Keys made before this migration get an id as new keys do, `key_` and a ULID in lower case: the
-- key's creation time in ten base-32 characters, then the first 16 hex characters of its hash
-- (hex digits are base-32 digits), so ids are unique, parse as ULIDs and sort by creation time.
UPDATE api_keys SET id = 'key_'
        || substr('0123456789abcdefghjkmnpqrstvwxyz', ((created_at >> 45) & 31)::int + 1, 1)
        || substr('0123456789abcdefghjkmnpqrstvwxyz', ((created_at >> 40) & 31)::int + 1, 1)
        || substr('0123456789abcdefghjkmnpqrstvwxyz', ((created_at >> 35) & 31)::int + 1, 1)
        || substr('0123456789abcdefghjkmnpqrstvwxyz', ((created_at >> 30) & 31)::int + 1, 1)
        || substr('0123456789abcdefghjkmnpqrstvwxyz', ((created_at >> 25) & 31)::int + 1, 1)
        || substr('0123456789abcdefghjkmnpqrstvwxyz', ((created_at >> 20) & 31)::int + 1, 1)
        || substr('0123456789abcdefghjkmnpqrstvwxyz', ((created_at >> 15) & 31)::int + 1, 1)
        || substr('0123456789abcdefghjkmnpqrstvwxyz', ((created_at >> 10) & 31)::int + 1, 1)
        || substr('0123456789abcdefghjkmnpqrstvwxyz', ((created_at >> 5) & 31)::int + 1, 1)
        || substr('0123456789abcdefghjkmnpqrstvwxyz', ((created_at >> 0) & 31)::int + 1, 1)
        || substr(lower(key_hash), 1, 16);

ALTER TABLE api_keys ALTER COLUMN id SET NOT NULL;
ALTER TABLE api_keys ADD CONSTRAINT api_keys_id_key UNIQUE (id);

CREATE INDEX api_keys_by_env ON api_keys (env_id, id);

CREATE TABLE access_tokens (
    id TEXT COLLATE "C" PRIMARY KEY,
    token_hash TEXT COLLATE "C" NOT NULL UNIQUE,
    token_prefix TEXT NOT NULL,
    project_id TEXT COLLATE "C" NOT NULL REFERENCES projects (id),
    name TEXT,
    created_at BIGINT NOT NULL,
    revoked_at BIGINT
);

CREATE INDEX access_tokens_by_project ON access_tokens (project_id, id);

-- One row at most: the instance has one admin token.
CREATE TABLE admin_tokens (
    id SMALLINT PRIMARY KEY CHECK (id = 1),
    token_hash TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
