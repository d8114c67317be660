-- 005: a remote id belongs to at most one key of a target. Before this version, a Verifone create
-- whose outcome was unknown could adopt a customer another key already held (a twin with the same
-- fields, or a richer record containing a sparse row's fields), and the snapshot then held one
-- remote id for two keys: a later delete of either key deleted the other's customer.
-- A file written by such a version still opens. Of the keys sharing a remote id, one keeps it: the
-- key that created it (a 'succeeded' create outcome with that id), else the earliest synced, else
-- the lowest external_id. The others are moved out of the snapshot into remote_id_conflicts (kept
-- for the audit trail, nothing is lost): custsync no longer believes they have a customer, so a
-- mirror run never deletes the keeper's customer for them, and the next run that lists them
-- looks for an un-owned customer equal to their payload before it creates one (StateStore
-- .unresolved_conflicts). StateStore.record_batch keeps it so: it refuses, and fails, a record
-- that would give a second key a remote id (source 'refused' below).
CREATE TABLE remote_id_conflicts (
    target      VARCHAR NOT NULL,
    external_id VARCHAR NOT NULL,              -- the key that lost (or was refused) the remote id
    remote_id   VARCHAR NOT NULL,
    kept_by     VARCHAR NOT NULL,              -- the key that owns the remote id
    payload     VARCHAR,                       -- the snapshot (or refused) payload of external_id
    source      VARCHAR NOT NULL,              -- 'migration 005' | 'refused'
    run_id      VARCHAR,                       -- the run whose record was refused, else NULL
    found_at    TIMESTAMPTZ NOT NULL
);

INSERT INTO remote_id_conflicts
WITH ranked AS (
    SELECT s.*, row_number() OVER (
        PARTITION BY s.target, s.remote_id
        ORDER BY EXISTS (
                     SELECT 1 FROM outcomes o
                     WHERE o.target = s.target AND o.external_id = s.external_id
                       AND o.remote_id = s.remote_id AND o.action = 'create'
                       AND o.result = 'succeeded') DESC,
                 s.synced_at, s.external_id) AS rn
    FROM snapshot s
    WHERE s.remote_id IS NOT NULL
)
SELECT l.target, l.external_id, l.remote_id, k.external_id, l.payload, 'migration 005', NULL, now()
FROM ranked l JOIN ranked k ON k.target = l.target AND k.remote_id = l.remote_id AND k.rn = 1
WHERE l.rn > 1;

DELETE FROM snapshot WHERE EXISTS (
    SELECT 1 FROM remote_id_conflicts c
    WHERE c.target = snapshot.target AND c.external_id = snapshot.external_id
      AND c.remote_id = snapshot.remote_id
);
