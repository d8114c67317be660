-- 006: who and what started a run. Files written before keep NULL in these columns.
ALTER TABLE runs ADD COLUMN custsync_version VARCHAR;     -- the installed custsync
ALTER TABLE runs ADD COLUMN host VARCHAR;                 -- the machine's name
ALTER TABLE runs ADD COLUMN os_user VARCHAR;              -- the operating-system user
ALTER TABLE runs ADD COLUMN prefect_flow_run_id VARCHAR;  -- when run under Prefect
ALTER TABLE runs ADD COLUMN prefect_deployment VARCHAR;   -- when run by a deployment
ALTER TABLE runs ADD COLUMN settings JSON;                -- effective settings; secrets only as set/unset
ALTER TABLE runs ADD COLUMN inputs JSON;                  -- [{path, bytes, sha256}] of every file read
