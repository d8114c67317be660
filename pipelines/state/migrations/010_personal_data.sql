-- 010: personal data (issue 12). Erasure requests (custsync forget) and the retention of personal
-- values: what was asked, what the provider confirmed, what was redacted locally, and when.
-- Which columns hold personal values, and how each is redacted, is declared in one place:
-- pipelines/state/redaction.py (docs/state.md, "Personal data", lists them per column).

-- The suppression list: a key forgotten at a target is never sent to it again. A later extract
-- that still lists it is rejected with rule 'forgotten' (rejects hold no value for it). The key
-- is kept in clear, like every audit row keeps it: it is the CRM's identifier, not a personal
-- value of the customer (docs/state.md says why, and what to do when a CRM keys by e-mail).
CREATE TABLE suppressed (
    target           VARCHAR NOT NULL,
    external_id      VARCHAR NOT NULL,
    remote_id        VARCHAR,                  -- the customer erased at the provider, if any
    requested_at     TIMESTAMPTZ NOT NULL,     -- when custsync forget was first asked
    requested_run_id VARCHAR NOT NULL,
    erased_at        TIMESTAMPTZ,              -- when the provider confirmed the erasure
    redacted_at      TIMESTAMPTZ,              -- when every local copy was redacted
    done_run_id      VARCHAR,                  -- the run that completed both
    PRIMARY KEY (target, external_id)
);

-- One row per table column and run that redacted personal values: how many rows, and why.
CREATE TABLE redactions (
    run_id      VARCHAR NOT NULL,
    reason      VARCHAR NOT NULL CHECK (reason IN ('forget', 'retention')),
    target      VARCHAR,                       -- forget: the target; retention: NULL (all)
    table_name  VARCHAR NOT NULL,
    column_name VARCHAR NOT NULL,
    rows        BIGINT NOT NULL,
    older_than  TIMESTAMPTZ,                   -- retention: rows older than this were redacted
    redacted_at TIMESTAMPTZ NOT NULL
);
