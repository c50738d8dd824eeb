-- Human agents (issue 7): who was on callbot's side of each call (the robot, then an agent after
-- a warm transfer), agent accounts and queues per tenant, and what agents record about the calls
-- they took. Same conventions as 0001/0002: TEXT, BIGINT and DOUBLE PRECISION only, times in
-- microseconds since the Unix epoch (UTC), JSON as text.

CREATE TABLE call_legs (
    call_id       TEXT NOT NULL REFERENCES calls (id) ON DELETE CASCADE,
    seq           BIGINT NOT NULL,
    kind          TEXT NOT NULL CHECK (kind IN ('robot', 'agent')),
    agent_id      TEXT,
    queue         TEXT,
    wait_ms       BIGINT,
    started_at_us BIGINT NOT NULL,
    ended_at_us   BIGINT NOT NULL,
    PRIMARY KEY (call_id, seq)
);
CREATE INDEX call_legs_agent ON call_legs (agent_id, started_at_us);

CREATE TABLE agents (
    tenant        TEXT NOT NULL REFERENCES tenants (id),
    id            TEXT NOT NULL,
    name          TEXT NOT NULL,
    -- Argon2id PHC string of the console password.
    password_hash TEXT NOT NULL,
    -- {"skill": level, ...}
    skills_json   TEXT NOT NULL,
    role          TEXT NOT NULL CHECK (role IN ('agent', 'supervisor')),
    -- The SIP user the agent's phone registers as (NULL: console softphone only).
    sip_user      TEXT,
    sip_password  TEXT,
    disabled      BIGINT NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1)),
    created_at_us BIGINT NOT NULL,
    PRIMARY KEY (tenant, id)
);
CREATE UNIQUE INDEX agents_sip_user ON agents (sip_user);

CREATE TABLE queues (
    tenant        TEXT NOT NULL REFERENCES tenants (id),
    name          TEXT NOT NULL,
    -- bot_runtime::agents::queue::QueueConfig as JSON.
    config_json   TEXT NOT NULL,
    updated_at_us BIGINT NOT NULL,
    PRIMARY KEY (tenant, name)
);

-- What the agent recorded about a call they took (one row per call and agent; saving again
-- replaces it). No reference to `calls`: the agent may save it before the call's record is.
CREATE TABLE agent_dispositions (
    tenant         TEXT NOT NULL,
    call_id        TEXT NOT NULL,
    agent_id       TEXT NOT NULL,
    disposition    TEXT NOT NULL,
    notes          TEXT NOT NULL,
    callback_at_us BIGINT,
    saved_at_us    BIGINT NOT NULL,
    PRIMARY KEY (call_id, agent_id)
);
CREATE INDEX agent_dispositions_agent ON agent_dispositions (tenant, agent_id, saved_at_us);
