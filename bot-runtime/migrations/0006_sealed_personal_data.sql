-- Personal data at rest (issue 8): phone numbers, names, account fields, transcripts, slot
-- values, agents' notes, SIP passwords and the audit trail's subjects and details are sealed
-- (AES-256-GCM, `enc:KEY:…` text) by the store before they are written; see
-- bot-runtime/src/vault.rs. A `phone` column now holds the number's blind index (`bi:…`, an HMAC
-- of the number), which keeps equality lookups, the per-tenant uniqueness of leads and the DNC
-- check working, and the sealed number itself is in the new `phone_enc` column beside it.
--
-- Rows written before this migration are sealed by the store the first time it opens the
-- database with a keyring (Store::reseal), before anything else reads them.
-- Same conventions as 0001–0005.

-- The keys this database's data was sealed with: the index key (one row, id 'index') and every
-- data key still in use, each with a check value (an HMAC of a constant under the key) so that
-- a node started with another keyring is refused instead of writing unreadable data.
CREATE TABLE vault_keys (
    kind        TEXT NOT NULL CHECK (kind IN ('index', 'data')),
    id          TEXT NOT NULL,
    check_value TEXT NOT NULL,
    added_at_us BIGINT NOT NULL,
    PRIMARY KEY (kind, id)
);

ALTER TABLE calls ADD COLUMN phone_enc TEXT;
ALTER TABLE leads ADD COLUMN phone_enc TEXT;
ALTER TABLE attempts ADD COLUMN phone_enc TEXT;
ALTER TABLE dnc ADD COLUMN phone_enc TEXT;
ALTER TABLE dial_decisions ADD COLUMN phone_enc TEXT;
