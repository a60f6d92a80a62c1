-- name: table_row_counts()
-- Every table's exact row count (leaf tables; a partitioned parent is counted in its
-- partitions), for a backup's manifest and a restore drill's evidence. Run inside the
-- snapshot pg_dump dumps, so the counts are the dump's.
SELECT n.nspname || '.' || c.relname AS "table",
       (xpath('/row/c/text()',
              query_to_xml(format('SELECT count(*) AS c FROM %I.%I', n.nspname, c.relname),
                           false, true, '')))[1]::text::bigint AS "rows"
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind = 'r'
  AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname NOT LIKE 'pg_toast%'
  AND n.nspname NOT LIKE 'pg_temp%'
ORDER BY 1;

-- name: audit_head()$
-- The audit chain's head (id:hash of the newest row), recorded in a backup's manifest.
SELECT coalesce((SELECT id::text || ':' || hash FROM ops.audit_log ORDER BY id DESC LIMIT 1), '');

-- name: btree_indexes()
-- Every B-tree index of the restored database, for amcheck's bt_index_check.
SELECT c.oid::regclass::text AS "index", c.oid AS oid
FROM pg_index i
JOIN pg_class c ON c.oid = i.indexrelid
JOIN pg_am am ON am.oid = c.relam
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE am.amname = 'btree' AND i.indisvalid AND i.indisready
  AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%'
ORDER BY 1;

-- name: catalog_insert(id, object_key, database, operator, started_at, finished_at, plaintext_bytes, stored_bytes, plaintext_sha256, manifest)!
-- Catalogue a backup whose object and manifest are stored.
INSERT INTO ops.backup_catalog (id, object_key, database, operator, started_at, finished_at,
                                plaintext_bytes, stored_bytes, plaintext_sha256, manifest)
VALUES (:id, :object_key, :database, :operator, :started_at, :finished_at,
        :plaintext_bytes, :stored_bytes, :plaintext_sha256, :manifest);

-- name: catalog_list(limit)
-- The catalogued backups not yet pruned, newest first.
SELECT id, object_key, database, operator, started_at, finished_at, plaintext_bytes,
       stored_bytes, plaintext_sha256, manifest, verified_at, verify, drilled_at, drill, pruned_at
FROM ops.backup_catalog
WHERE pruned_at IS NULL
ORDER BY finished_at DESC
LIMIT :limit;

-- name: catalog_get(id)^
-- One catalogued backup by id.
SELECT id, object_key, database, operator, started_at, finished_at, plaintext_bytes,
       stored_bytes, plaintext_sha256, manifest, verified_at, verify, drilled_at, drill, pruned_at
FROM ops.backup_catalog
WHERE id = :id;

-- name: catalog_verified(id, verify)!
-- Record a verification's result.
UPDATE ops.backup_catalog SET verified_at = now(), verify = :verify WHERE id = :id;

-- name: catalog_drilled(id, drill)!
-- Record a restore drill's evidence.
UPDATE ops.backup_catalog SET drilled_at = now(), drill = :drill WHERE id = :id;

-- name: catalog_pruned(id)!
-- Mark a backup whose object prune deleted.
UPDATE ops.backup_catalog SET pruned_at = now() WHERE id = :id AND pruned_at IS NULL;

-- name: catalog_last_sizes(database)$
-- The plaintext size of the newest backup of a database: the next one's ETA.
SELECT plaintext_bytes FROM ops.backup_catalog WHERE database = :database
ORDER BY finished_at DESC LIMIT 1;
