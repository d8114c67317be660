-- 001: the state and audit tables. Later migrations add to them; they never rewrite history.
-- Payloads are canonical JSON text (VARCHAR, so that millions of rows load without a JSON
-- parse); query them with DuckDB's JSON functions, e.g. payload ->> '$.email_address'.
-- No credential is ever stored here.

CREATE TABLE runs (
    run_id        VARCHAR PRIMARY KEY,         -- time-ordered: 20261122T061000.123456Z-1a2b3c
    flow          VARCHAR NOT NULL,            -- sync | migrate | ...
    target        VARCHAR NOT NULL,            -- verifone | sumup
    mode          VARCHAR NOT NULL,            -- mirror | upsert | update-only | create-only
    dry_run       BOOLEAN NOT NULL,
    extract_paths VARCHAR[] NOT NULL,
    params        JSON,
    started_at    TIMESTAMPTZ NOT NULL,
    finished_at   TIMESTAMPTZ,
    status        VARCHAR NOT NULL,            -- running, then what finish_run says
    exit_code     INTEGER,
    summary       JSON
);

-- What each target holds, as far as custsync confirmed it: one row per (target, key).
CREATE TABLE snapshot (
    target       VARCHAR NOT NULL,
    external_id  VARCHAR NOT NULL,
    remote_id    VARCHAR,                      -- Verifone UUID / SumUp customer_id
    content_hash VARCHAR NOT NULL,             -- MD5 hex of payload
    payload      VARCHAR NOT NULL,             -- the source payload last synced (merge base)
    status       VARCHAR NOT NULL,             -- active | closed
    synced_at    TIMESTAMPTZ NOT NULL,
    run_id       VARCHAR NOT NULL,
    PRIMARY KEY (target, external_id)
);

-- One row per intended action, written before anything is sent ("unchanged" keys are not).
CREATE TABLE plan (
    run_id       VARCHAR NOT NULL,
    target       VARCHAR NOT NULL,
    plan_id      VARCHAR NOT NULL,             -- sha256(target|external_id|action|hash)[:32]
    external_id  VARCHAR NOT NULL,
    action       VARCHAR NOT NULL,             -- create | update | close | delete | skip | ...
    status       VARCHAR,
    remote_id    VARCHAR,
    payload      VARCHAR,
    content_hash VARCHAR,
    base_payload VARCHAR,                      -- snapshot payload for update/close
    reason       VARCHAR,
    planned_at   TIMESTAMPTZ NOT NULL
);

-- Write-ahead intents: opened (committed) before a batch's calls, closed with its outcomes.
-- A pending row after a crash is an action whose effect is unknown: reconcile it first.
CREATE TABLE journal (
    run_id        VARCHAR NOT NULL,
    target        VARCHAR NOT NULL,
    plan_id       VARCHAR NOT NULL,
    state         VARCHAR NOT NULL CHECK (state IN ('pending', 'done')),
    opened_at     TIMESTAMPTZ NOT NULL,
    closed_at     TIMESTAMPTZ,
    closed_run_id VARCHAR                      -- the run that recorded the outcome
);
CREATE INDEX journal_plan ON journal (target, plan_id);

-- One row per HTTP call (every attempt).
CREATE TABLE calls (
    run_id        VARCHAR NOT NULL,
    target        VARCHAR NOT NULL,
    plan_id       VARCHAR,                     -- null for calls serving many rows (search)
    operation     VARCHAR NOT NULL,            -- OpenAPI operationId, e.g. postV2Customer
    method        VARCHAR NOT NULL,
    path_template VARCHAR NOT NULL,            -- /v2/customer/{customerId}
    status        INTEGER,                     -- HTTP status; null when no response
    error_code    VARCHAR,                     -- provider error code, or timeout / connect ...
    attempt       INTEGER NOT NULL,            -- 1 for the first try
    latency_ms    DOUBLE,
    started_at    TIMESTAMPTZ NOT NULL,
    request_id    VARCHAR
);

-- One row per record per run: what happened to each planned action.
CREATE TABLE outcomes (
    run_id         VARCHAR NOT NULL,
    target         VARCHAR NOT NULL,
    plan_id        VARCHAR,
    external_id    VARCHAR NOT NULL,
    action         VARCHAR NOT NULL,
    result         VARCHAR NOT NULL
        CHECK (result IN ('succeeded', 'failed', 'adopted', 'ambiguous', 'skipped')),
    remote_id      VARCHAR,
    http_status    INTEGER,
    error_class    VARCHAR,                    -- transient | rejected | fatal | ...
    error_code     VARCHAR,
    message        VARCHAR,
    changed_fields VARCHAR[],
    drift_fields   VARCHAR[],
    occurred_at    TIMESTAMPTZ NOT NULL        -- when the outcome became known
);

-- Rows refused by validation: never sent. value is masked but for a short prefix.
CREATE TABLE rejects (
    run_id      VARCHAR NOT NULL,
    target      VARCHAR NOT NULL,
    external_id VARCHAR,
    field       VARCHAR NOT NULL,
    rule        VARCHAR NOT NULL,
    message     VARCHAR NOT NULL,
    value       VARCHAR,
    source_row  BIGINT,
    rejected_at TIMESTAMPTZ NOT NULL
);
