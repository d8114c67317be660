-- 007: every change, before and after. outcomes.changed_fields names fields only, and the
-- remote value behind a drift (a portal edit kept or overwritten) or a deleted customer's last
-- payload was in no table. One row per field of every succeeded (or adopted) create, update,
-- delete and close, written in the batch's transaction with its outcome
-- (StateStore.record_batch). Values are text: a string as is, any other value as JSON text.
-- Files written before this version get the empty table: their history stays in outcomes.
CREATE TABLE changes (
    run_id      VARCHAR NOT NULL,
    target      VARCHAR NOT NULL,
    plan_id     VARCHAR,
    external_id VARCHAR NOT NULL,
    remote_id   VARCHAR,
    action      VARCHAR NOT NULL,              -- create | update | delete | close
    field       VARCHAR NOT NULL,              -- the provider's field path, dotted: billing.city
    before      VARCHAR,                       -- what the provider held (update: its GET; delete,
                                               -- close: the last payload synced); NULL for a create
    after       VARCHAR,                       -- the value sent; NULL for a delete, close, removal
    why         VARCHAR NOT NULL
        CHECK (why IN ('source', 'remote_kept', 'drift')),
        -- source: the extract changed it; remote_kept: the extract did not, the provider's value
        -- differs from what custsync last sent (an edit made outside custsync) and was kept;
        -- drift: edited outside custsync AND changed by the extract: overwritten (before = the
        -- provider's value)
    occurred_at TIMESTAMPTZ NOT NULL
);

-- The changes with who and what ran them: one SELECT answers "what did custsync change in
-- this provider for this customer, from what to what, when, in which run, started by whom".
CREATE VIEW v_changes AS
SELECT c.run_id, c.target, c.plan_id, c.external_id, c.remote_id, c.action, c.field, c.before,
       c.after, c.why, c.occurred_at,
       r.flow, r.mode, r.started_at, r.custsync_version, r.host, r.os_user,
       r.prefect_flow_run_id, r.prefect_deployment
FROM changes c JOIN runs r USING (run_id);

-- v_customer_history (002) with the change rows: its columns are kept, in order, and new ones
-- appended. kind says what a row is: 'outcome', 'reject' or 'change' (result 'changed'; field,
-- before, after and why filled in).
CREATE OR REPLACE VIEW v_customer_history AS
SELECT o.external_id, o.occurred_at, o.run_id, r.flow, o.target, o.action, o.result,
       o.remote_id, o.changed_fields, o.drift_fields, o.http_status, o.error_code, o.message,
       'outcome' AS kind, NULL::VARCHAR AS field, NULL::VARCHAR AS before,
       NULL::VARCHAR AS after, NULL::VARCHAR AS why
FROM outcomes o JOIN runs r USING (run_id)
UNION ALL
SELECT j.external_id, j.rejected_at, j.run_id, r.flow, j.target, 'validate', 'rejected', NULL,
       NULL, NULL, NULL, j.rule, j.field || ': ' || j.message,
       'reject', j.field, NULL, NULL, NULL
FROM rejects j JOIN runs r USING (run_id)
UNION ALL
SELECT c.external_id, c.occurred_at, c.run_id, r.flow, c.target, c.action, 'changed',
       c.remote_id, NULL, NULL, NULL, NULL, NULL,
       'change', c.field, c.before, c.after, c.why
FROM changes c JOIN runs r USING (run_id);
