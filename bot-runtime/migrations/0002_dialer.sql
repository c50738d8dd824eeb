-- The dialer: tenants, flows, campaigns, leads and their state in each campaign, attempts, the
-- do-not-call lists and the audit trail of dial decisions.
--
-- Same portable subset as 0001 (TEXT, BIGINT, DOUBLE PRECISION; times as BIGINT microseconds since
-- the Unix epoch, UTC; JSON as text). Every table carries `tenant`, and every query the store runs
-- filters on it: no query crosses tenants, except the global DNC list (tenant '*'), which is by
-- definition everyone's.

CREATE TABLE tenants (
    id            TEXT NOT NULL PRIMARY KEY,
    name          TEXT NOT NULL,
    created_at_us BIGINT NOT NULL
);

-- A flow's YAML source, versioned: campaigns run a stored version, so every node runs the same one.
CREATE TABLE flows (
    tenant        TEXT NOT NULL REFERENCES tenants (id),
    name          TEXT NOT NULL,
    version       BIGINT NOT NULL,
    source        TEXT NOT NULL,
    sha256        TEXT NOT NULL,
    created_at_us BIGINT NOT NULL,
    PRIMARY KEY (tenant, name, version)
);

CREATE TABLE campaigns (
    tenant         TEXT NOT NULL REFERENCES tenants (id),
    id             TEXT NOT NULL,
    kind           TEXT NOT NULL CHECK (kind IN ('robot', 'human', 'blended')),
    flow           TEXT NOT NULL,
    flow_version   BIGINT NOT NULL,
    status         TEXT NOT NULL CHECK (status IN ('draft', 'running', 'paused', 'stopped', 'finished')),
    caller_id      TEXT,
    max_concurrent BIGINT NOT NULL,
    -- CampaignSettings as JSON: schedule and dial rules, order, pacing, trunk.
    settings_json  TEXT NOT NULL,
    created_at_us  BIGINT NOT NULL,
    updated_at_us  BIGINT NOT NULL,
    PRIMARY KEY (tenant, id),
    FOREIGN KEY (tenant, flow, flow_version) REFERENCES flows (tenant, name, version)
);

-- A tenant's customers, deduplicated by number.
CREATE TABLE leads (
    tenant         TEXT NOT NULL REFERENCES tenants (id),
    id             TEXT NOT NULL,
    phone          TEXT NOT NULL,
    external_id    TEXT,
    name           TEXT,
    -- Candidate IANA zones, space-separated; how they were found: column, number or default.
    timezones      TEXT NOT NULL,
    tz_source      TEXT NOT NULL,
    debt_id        TEXT,
    fields_json    TEXT NOT NULL,
    -- Where the lead came from (the import's file name) and its row there.
    source         TEXT NOT NULL,
    source_row     BIGINT,
    created_at_us  BIGINT NOT NULL,
    PRIMARY KEY (tenant, id),
    UNIQUE (tenant, phone)
);
CREATE INDEX leads_by_debt ON leads (tenant, debt_id);

-- A lead's life in one campaign. `state`: ready (waiting for `next_at_us`), done (final verdict or
-- final disposition). A node works on a lead only while it holds the lease (`lease_owner` until
-- `lease_until_us`); a lease that has run out is anyone's.
CREATE TABLE campaign_leads (
    tenant           TEXT NOT NULL,
    campaign         TEXT NOT NULL,
    lead             TEXT NOT NULL,
    seq              BIGINT NOT NULL,
    state            TEXT NOT NULL CHECK (state IN ('ready', 'done')),
    next_at_us       BIGINT NOT NULL,
    attempts         BIGINT NOT NULL,
    last_disposition TEXT,
    callback_at_us   BIGINT,
    -- The last verdict of the rule engine, "rule: detail".
    reason           TEXT,
    lease_owner      TEXT,
    lease_until_us   BIGINT,
    PRIMARY KEY (tenant, campaign, lead),
    FOREIGN KEY (tenant, campaign) REFERENCES campaigns (tenant, id),
    FOREIGN KEY (tenant, lead) REFERENCES leads (tenant, id)
);
CREATE INDEX campaign_leads_due ON campaign_leads (tenant, campaign, state, next_at_us, seq);
-- The next seq of an assignment (MAX(seq) is one probe).
CREATE INDEX campaign_leads_seq ON campaign_leads (tenant, campaign, seq);
-- Claims walk the unleased ready leads in the campaign's order and stop after a batch; leased
-- rows leave these partial indexes, and expired leases are found by the last one.
CREATE INDEX campaign_leads_claimable ON campaign_leads (tenant, campaign, seq)
    WHERE state = 'ready' AND lease_owner IS NULL;
CREATE INDEX campaign_leads_claimable_loop ON campaign_leads (tenant, campaign, attempts, seq)
    WHERE state = 'ready' AND lease_owner IS NULL;
CREATE INDEX campaign_leads_leased ON campaign_leads (tenant, campaign, lease_until_us)
    WHERE lease_owner IS NOT NULL;

-- One dial of one lead, written before its INVITE can leave. `disposition` is NULL while the
-- attempt is in progress; an attempt left NULL by a node that died is closed as 'interrupted' by
-- whoever takes the lead over.
CREATE TABLE attempts (
    tenant        TEXT NOT NULL,
    id            TEXT NOT NULL,
    campaign      TEXT NOT NULL,
    lead          TEXT NOT NULL,
    debt_id       TEXT,
    phone         TEXT NOT NULL,
    node          TEXT NOT NULL,
    started_at_us BIGINT NOT NULL,
    -- Set in the transaction that sends the INVITE (NULL: the INVITE never left).
    sent_at_us    BIGINT,
    ended_at_us   BIGINT,
    disposition   TEXT,
    call_id       TEXT,
    PRIMARY KEY (tenant, id)
);
CREATE INDEX attempts_by_lead ON attempts (tenant, campaign, lead, started_at_us);
CREATE INDEX attempts_by_debt ON attempts (tenant, debt_id, started_at_us);
CREATE INDEX attempts_by_phone ON attempts (tenant, phone, started_at_us);

-- Do-not-call entries: tenant '*' is the global list. An entry whose `expires_at_us` has passed
-- no longer blocks (and is removed by the store's sweep).
CREATE TABLE dnc (
    tenant        TEXT NOT NULL,
    phone         TEXT NOT NULL,
    reason        TEXT NOT NULL,
    source        TEXT NOT NULL,
    added_by      TEXT NOT NULL,
    added_at_us   BIGINT NOT NULL,
    expires_at_us BIGINT,
    PRIMARY KEY (tenant, phone)
);

-- Every dial decision: dialed, blocked (DNC), deferred (wait) or stopped, and the rule that decided.
CREATE TABLE dial_decisions (
    tenant   TEXT NOT NULL,
    id       TEXT NOT NULL,
    campaign TEXT NOT NULL,
    lead     TEXT NOT NULL,
    phone    TEXT NOT NULL,
    at_us    BIGINT NOT NULL,
    verdict  TEXT NOT NULL CHECK (verdict IN ('dialed', 'blocked', 'wait', 'stop')),
    rule     TEXT NOT NULL,
    detail   TEXT NOT NULL,
    until_us BIGINT,
    node     TEXT NOT NULL,
    attempt  TEXT,
    PRIMARY KEY (tenant, id)
);
CREATE INDEX dial_decisions_by_phone ON dial_decisions (tenant, phone, at_us);
CREATE INDEX dial_decisions_by_campaign ON dial_decisions (tenant, campaign, at_us);

-- Other audited actions (campaign changes, DNC changes, imports): who did what to what, when.
CREATE TABLE audit_events (
    tenant      TEXT NOT NULL,
    id          TEXT NOT NULL,
    at_us       BIGINT NOT NULL,
    actor       TEXT NOT NULL,
    action      TEXT NOT NULL,
    subject     TEXT NOT NULL,
    detail_json TEXT NOT NULL,
    PRIMARY KEY (tenant, id)
);
CREATE INDEX audit_events_by_time ON audit_events (tenant, at_us);

INSERT INTO tenants (id, name, created_at_us) VALUES ('default', 'Default tenant', 0);
