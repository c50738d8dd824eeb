-- The admin API's clients (issue 8): bearer tokens with a role, scoped to a tenant. Only the
-- SHA-256 of a token is kept (a token is 32 random bytes: a hash is enough, no salt needed).
-- Same conventions as 0001–0004.

CREATE TABLE api_tokens (
    tenant        TEXT NOT NULL REFERENCES tenants (id),
    id            TEXT NOT NULL,
    name          TEXT NOT NULL,
    role          TEXT NOT NULL CHECK (role IN ('admin', 'supervisor', 'auditor', 'agent')),
    token_sha256  TEXT NOT NULL,
    created_at_us BIGINT NOT NULL,
    revoked_at_us BIGINT,
    PRIMARY KEY (tenant, id)
);
CREATE UNIQUE INDEX api_tokens_hash ON api_tokens (token_sha256);
