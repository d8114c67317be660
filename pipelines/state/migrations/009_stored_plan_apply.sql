-- 009: a dry run's plan can be applied later (`custsync apply RUN_ID`), exactly as stored.
-- snapshot_fingerprint: of the target's snapshot when a dry run planned (count and an
-- order-independent MD5 over each row's key, content hash, remote id and status); apply refuses
-- when the snapshot no longer has it. plan_run_id: on an apply run, the dry run whose plan it
-- executes (set once its checks passed: a plan is applied at most once). Older rows keep NULL.
ALTER TABLE runs ADD COLUMN snapshot_fingerprint VARCHAR;
ALTER TABLE runs ADD COLUMN plan_run_id VARCHAR;
