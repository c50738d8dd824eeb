-- Flow versions in use (issue 8): which stored version of each flow is active. Activating a
-- version moves the tenant's campaigns on that flow that are not over (draft, running, paused) to
-- it, so their next calls run it; calls already up finish on the version they started with.
-- Same conventions as 0001–0007.

CREATE TABLE flow_heads (
    tenant          TEXT NOT NULL,
    name            TEXT NOT NULL,
    version         BIGINT NOT NULL,
    activated_at_us BIGINT NOT NULL,
    activated_by    TEXT NOT NULL,
    PRIMARY KEY (tenant, name),
    FOREIGN KEY (tenant, name, version) REFERENCES flows (tenant, name, version)
);

-- Reports and the lead-history page read a tenant's attempts by time.
CREATE INDEX attempts_by_time ON attempts (tenant, started_at_us);

-- Flows stored before this migration: their newest version is the active one.
INSERT INTO flow_heads (tenant, name, version, activated_at_us, activated_by)
SELECT tenant, name, MAX(version), MAX(created_at_us), 'migration' FROM flows GROUP BY tenant, name;

-- A lead's attempts in every campaign (the lead-history page).
CREATE INDEX attempts_by_lead_any ON attempts (tenant, lead, started_at_us);
