-- 004: the content key, a 64-bit number over the same payload fields as the SHA-256 content
-- hash (per-field seeded XXH3, summed: docs/extract-format.md §4). A diff compares keys:
-- hashing every row of a million-row extract with SHA-256 took a sixth of the plan, and a
-- number is smaller to load and join than 64 hex digits. content_hash stays what the audit
-- trail and plan ids use.
-- Rows written before this migration get their key when the store is next opened for writing
-- (StateStore computes it from the stored payload: XXH3 has no SQL function in DuckDB).
ALTER TABLE snapshot ADD COLUMN content_key UBIGINT;
ALTER TABLE plan ADD COLUMN content_key UBIGINT;
