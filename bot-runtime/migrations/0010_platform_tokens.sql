-- The `platform` role (issue 8): the deployment's operator, outside every tenant. Its tokens
-- belong to the tenant `*` (the name the global DNC list already has), which becomes a row of
-- `tenants` so that the tokens' foreign key holds; the store never lists it as a tenant. A CHECK
-- cannot be altered portably, so `api_tokens` is rebuilt with the wider one, which also ties the
-- role to the tenant: `platform` in `*`, and nothing else there. Same conventions as 0001–0009.

INSERT INTO tenants (id, name, created_at_us) VALUES ('*', 'Platform (global lists)', 0);

CREATE TABLE api_tokens_v2 (
    tenant        TEXT NOT NULL REFERENCES tenants (id),
    id            TEXT NOT NULL,
    name          TEXT NOT NULL,
    role          TEXT NOT NULL
        CHECK (role IN ('admin', 'supervisor', 'auditor', 'agent', 'platform')),
    token_sha256  TEXT NOT NULL,
    created_at_us BIGINT NOT NULL,
    revoked_at_us BIGINT,
    PRIMARY KEY (tenant, id),
    CHECK ((role = 'platform' AND tenant = '*') OR (role <> 'platform' AND tenant <> '*'))
);
INSERT INTO api_tokens_v2 (tenant, id, name, role, token_sha256, created_at_us, revoked_at_us)
    SELECT tenant, id, name, role, token_sha256, created_at_us, revoked_at_us FROM api_tokens;
DROP TABLE api_tokens;
ALTER TABLE api_tokens_v2 RENAME TO api_tokens;
CREATE UNIQUE INDEX api_tokens_hash ON api_tokens (token_sha256);
