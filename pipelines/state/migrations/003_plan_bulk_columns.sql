-- 003: the plan is written in bulk before anything is sent (hundreds of thousands of rows per
-- run for millions of customers), and DuckDB's dictionary/FSST compression of its payloads and
-- hex hashes took most of that write (1.2 of 1.6 s for 700,000 rows): those three columns are
-- stored uncompressed (random hex barely compresses; payloads take ~2x the disk).
-- base_payload stays, NULL unless a caller supplied one: merge bases are joined from the
-- snapshot when the plan is read (StateStore.plan, StateStore.pending_journal).
-- DuckDB cannot change a column's compression in place: copy the table, keep its rows.
CREATE TABLE plan_003 (
    run_id       VARCHAR NOT NULL,
    target       VARCHAR NOT NULL,
    plan_id      VARCHAR USING COMPRESSION uncompressed NOT NULL,
    external_id  VARCHAR NOT NULL,
    action       VARCHAR NOT NULL,
    status       VARCHAR,
    remote_id    VARCHAR,
    payload      VARCHAR USING COMPRESSION uncompressed,
    content_hash VARCHAR USING COMPRESSION uncompressed,
    base_payload VARCHAR,
    reason       VARCHAR,
    planned_at   TIMESTAMPTZ NOT NULL
);
INSERT INTO plan_003 SELECT * FROM plan;
DROP TABLE plan;
ALTER TABLE plan_003 RENAME TO plan;
