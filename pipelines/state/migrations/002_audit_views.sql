-- 002: the audit views. Their names and columns are a contract (README, "The DuckDB file"):
-- a compliance officer's saved queries depend on them. Change them only by adding columns.

-- One row per run, with its counts.
CREATE VIEW v_runs AS
WITH planned AS (SELECT run_id, count(*) AS n FROM plan GROUP BY run_id),
     done AS (
         SELECT run_id,
                count(*) FILTER (WHERE result IN ('succeeded', 'adopted')) AS succeeded,
                count(*) FILTER (WHERE result IN ('failed', 'ambiguous')) AS failed,
                count(*) FILTER (WHERE len(drift_fields) > 0) AS drift
         FROM outcomes GROUP BY run_id),
     refused AS (
         SELECT run_id, count(DISTINCT coalesce(external_id, '')) AS n FROM rejects GROUP BY run_id),
     sent AS (
         SELECT run_id, count(*) AS n, count(*) FILTER (WHERE status = 429) AS http_429,
                count(*) FILTER (WHERE attempt > 1) AS retries
         FROM calls GROUP BY run_id)
SELECT r.run_id, r.flow, r.target, r.mode, r.dry_run, r.status, r.exit_code,
       r.started_at, r.finished_at,
       round(date_diff('millisecond', r.started_at, r.finished_at) / 1000.0, 3) AS duration_s,
       coalesce(planned.n, 0) AS planned,
       coalesce(done.succeeded, 0) AS succeeded,
       coalesce(done.failed, 0) AS failed,
       coalesce(refused.n, 0) AS rejected,
       coalesce(done.drift, 0) AS drift,
       coalesce(sent.n, 0) AS calls,
       coalesce(sent.retries, 0) AS retries,
       coalesce(sent.http_429, 0) AS http_429,
       r.extract_paths
FROM runs r
LEFT JOIN planned USING (run_id)
LEFT JOIN done USING (run_id)
LEFT JOIN refused USING (run_id)
LEFT JOIN sent USING (run_id);

-- Every record that did not make it: failed or ambiguous actions, and validation rejects.
CREATE VIEW v_failures AS
SELECT o.run_id, o.target, o.external_id, o.result AS kind, o.action, NULL::VARCHAR AS field,
       coalesce(o.error_code, o.error_class) AS code, o.http_status, o.message,
       o.occurred_at
FROM outcomes o
WHERE o.result IN ('failed', 'ambiguous')
UNION ALL
SELECT j.run_id, j.target, j.external_id, 'rejected', NULL, j.field, j.rule, NULL, j.message,
       j.rejected_at
FROM rejects j;

-- Everything that happened to one external_id, across runs and targets.
CREATE VIEW v_customer_history AS
SELECT o.external_id, o.occurred_at, o.run_id, r.flow, o.target, o.action, o.result,
       o.remote_id, o.changed_fields, o.drift_fields, o.http_status, o.error_code, o.message
FROM outcomes o JOIN runs r USING (run_id)
UNION ALL
SELECT j.external_id, j.rejected_at, j.run_id, r.flow, j.target, 'validate', 'rejected', NULL,
       NULL, NULL, NULL, j.rule, j.field || ': ' || j.message
FROM rejects j JOIN runs r USING (run_id);

-- Remote edits made outside custsync, one row per field (kept unless the source changed it).
CREATE VIEW v_drift AS
SELECT o.run_id, o.target, o.external_id, o.remote_id, unnest(o.drift_fields) AS field,
       o.occurred_at
FROM outcomes o
WHERE len(o.drift_fields) > 0;

-- Latency and errors per provider operation, over every recorded call.
CREATE VIEW v_call_latency AS
SELECT target, operation, method, path_template,
       count(*) AS calls,
       round(quantile_cont(latency_ms, 0.50), 1) AS p50_ms,
       round(quantile_cont(latency_ms, 0.95), 1) AS p95_ms,
       round(quantile_cont(latency_ms, 0.99), 1) AS p99_ms,
       round(max(latency_ms), 1) AS max_ms,
       count(*) FILTER (WHERE status = 429) AS http_429,
       count(*) FILTER (WHERE status >= 500 OR status IS NULL) AS server_errors
FROM calls
GROUP BY target, operation, method, path_template;
