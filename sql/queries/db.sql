-- The Database area: activity, locks, table health, slow queries, replication, and what the
-- cancel/terminate and maintenance actions read. Catalog views only: no business table.

-- name: db_activity()
-- Every client backend of the cluster (pg_activity's list): who, from where, what it runs or
-- waits on, how long its query, transaction and state have lasted, the age of its xmin, and
-- (only when it waits on a lock: the call takes the lock manager's locks) who blocks it.
SELECT a.pid, a.datname AS database, a.usename AS username, a.application_name AS application,
       CASE WHEN a.client_addr IS NULL THEN 'local'
            ELSE host(a.client_addr) || ':' || a.client_port END AS client,
       a.backend_type, a.state, a.wait_event_type, a.wait_event,
       extract(epoch FROM now() - a.query_start)::float8 AS query_seconds,
       extract(epoch FROM now() - a.xact_start)::float8 AS xact_seconds,
       extract(epoch FROM now() - a.state_change)::float8 AS state_seconds,
       -- what it holds back the xmin horizon by: its snapshot's xmin or its own xid
       greatest(age(a.backend_xmin), age(a.backend_xid))::bigint AS xmin_age,
       a.backend_xid IS NOT NULL AS writing,
       a.query,
       CASE WHEN a.wait_event_type = 'Lock' THEN pg_blocking_pids(a.pid) END AS blocked_by,
       CASE WHEN a.wait_event_type = 'Lock' THEN
           (SELECT l.mode || ' on ' || coalesce(l.relation::regclass::text, l.locktype)
            FROM pg_locks l WHERE l.pid = a.pid AND NOT l.granted LIMIT 1) END AS waiting_for,
       coalesce(r.rolsuper, false) AS superuser,
       a.pid = pg_backend_pid() AS me
FROM pg_stat_activity a
LEFT JOIN pg_roles r ON r.oid = a.usesysid
WHERE a.backend_type = 'client backend'
ORDER BY a.pid;

-- name: db_horizon_others()
-- What else holds back the xmin horizon besides sessions: replication slots and prepared
-- transactions, oldest first.
SELECT kind, name, xid_age FROM (
    SELECT 'replication slot' AS kind, slot_name::text AS name,
           greatest(age(xmin), age(catalog_xmin))::bigint AS xid_age
    FROM pg_replication_slots
    WHERE xmin IS NOT NULL OR catalog_xmin IS NOT NULL
    UNION ALL
    SELECT 'prepared transaction', gid, age(transaction)::bigint FROM pg_prepared_xacts
) held
ORDER BY xid_age DESC;

-- name: db_connections()^
-- Connections used against max_connections (client backends of the whole cluster), and
-- the size of this database.
SELECT (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend')::int AS used,
       current_setting('max_connections')::int AS max_connections,
       current_setting('superuser_reserved_connections')::int AS reserved,
       current_database() AS database,
       pg_database_size(current_database()) AS database_bytes,
       current_setting('server_version') AS version,
       pg_is_in_recovery() AS in_recovery;

-- name: db_tables()
-- Every table of every schema but the system's: the AGIS manual's table-size query
-- (pg_total_relation_size; NULL while the table is locked exclusively) with its heap and index parts, rows and dead rows, the last
-- (auto)vacuum and (auto)analyze, and a bloat estimate from the planner's statistics (the
-- pages the rows need at their average width against the pages the table has; NULL where
-- there are no statistics). Largest first.
WITH widths AS (
    SELECT s.schemaname, s.tablename,
           sum((1 - s.null_frac) * s.avg_width) AS data_width,
           bool_or(s.null_frac > 0) AS has_nulls,
           count(*) AS columns
    FROM pg_stats s
    WHERE s.schemaname NOT IN ('pg_catalog', 'information_schema')
    GROUP BY s.schemaname, s.tablename
), sized AS (
    SELECT c.oid, n.nspname, c.relname, c.relpages, c.reltuples,
           -- sizing a table opens it: not while an ACCESS EXCLUSIVE lock is held or queued on
           -- it (the size would wait behind it, and so would this whole tab)
           EXISTS (SELECT 1 FROM pg_locks l
                   WHERE l.relation = c.oid AND l.mode = 'AccessExclusiveLock'
                     AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())) AS locked,
           current_setting('block_size')::int AS bs,
           coalesce((SELECT substring(o FROM 'fillfactor=(\d+)')::int
                     FROM unnest(c.reloptions) o WHERE o LIKE 'fillfactor=%'), 100) AS fillfactor,
           -- a row: its header (23 bytes and the null bitmap, aligned to 8), its data
           -- (aligned to 8) and its line pointer (4 bytes)
           ceil((23 + CASE WHEN w.has_nulls THEN ceil(w.columns / 8.0) ELSE 0 END) / 8.0) * 8
               + ceil(w.data_width / 8.0) * 8 + 4 AS row_bytes
    FROM pg_class c
    JOIN pg_namespace n ON n.oid = c.relnamespace
    LEFT JOIN widths w ON w.schemaname = n.nspname AND w.tablename = c.relname
    WHERE c.relkind IN ('r', 'p')
      AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_toast'
)
SELECT z.nspname AS schema, z.relname AS table_name, z.locked,
       CASE WHEN NOT z.locked THEN pg_total_relation_size(z.oid) END AS total_bytes,
       CASE WHEN NOT z.locked THEN pg_relation_size(z.oid) END AS heap_bytes,
       CASE WHEN NOT z.locked THEN pg_indexes_size(z.oid) END AS index_bytes,
       CASE WHEN z.reltuples >= 0 THEN z.reltuples::bigint END AS estimated_rows,
       s.n_live_tup AS live_rows, s.n_dead_tup AS dead_rows,
       s.last_vacuum, s.last_autovacuum, s.last_analyze, s.last_autoanalyze,
       CASE WHEN z.row_bytes IS NOT NULL AND z.reltuples >= 0 AND z.relpages > 0 THEN
           greatest(z.relpages - ceil(z.reltuples / greatest(floor((z.bs - 24) * z.fillfactor / 100.0
                                                                   / z.row_bytes), 1)), 0)::bigint * z.bs
       END AS bloat_bytes
FROM sized z
LEFT JOIN pg_stat_all_tables s ON s.relid = z.oid
ORDER BY total_bytes DESC NULLS FIRST, schema, table_name;

-- name: db_indexes()
-- Every index of every schema but the system's: its size, how often it was scanned
-- (idx_scan = 0: unused since the statistics were reset), and whether it enforces a
-- constraint (then it stays, used or not) or is invalid (a failed CONCURRENTLY build); its
-- size NULL while it or its table is locked exclusively.
SELECT s.schemaname AS schema, s.relname AS table_name, s.indexrelname AS index_name,
       CASE WHEN NOT EXISTS (SELECT 1 FROM pg_locks l
                             WHERE l.relation IN (s.indexrelid, s.relid) AND l.mode = 'AccessExclusiveLock'
                               AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()))
            THEN pg_relation_size(s.indexrelid) END AS bytes,
       s.idx_scan,
       i.indisunique AS is_unique, i.indisprimary AS is_primary, i.indisvalid AS is_valid
FROM pg_stat_all_indexes s
JOIN pg_index i ON i.indexrelid = s.indexrelid
WHERE s.schemaname NOT IN ('pg_catalog', 'information_schema') AND s.schemaname !~ '^pg_toast'
ORDER BY bytes DESC NULLS FIRST, schema, index_name;

-- name: db_lock_timeout()$
-- Give up on a lock after 2 s for the rest of this transaction (a health read never queues
-- behind an exclusive lock for long).
SELECT set_config('lock_timeout', '2s', true);

-- name: db_statements_installed()$
-- Whether pg_stat_statements is installed in this database (whether the server loads it,
-- reading it says: shared_preload_libraries itself is not readable by the console's role).
SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_stat_statements');

-- name: db_statements(limit)
-- The statements that took the most time in this database (pg_stat_statements): calls,
-- total and mean time, rows.
SELECT s.queryid, s.query, r.rolname AS username, s.calls, s.total_exec_time AS total_ms,
       s.mean_exec_time AS mean_ms, s.max_exec_time AS max_ms, s.rows
FROM pg_stat_statements s
LEFT JOIN pg_roles r ON r.oid = s.userid
WHERE s.dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
ORDER BY s.total_exec_time DESC
LIMIT :limit;

-- name: db_replication()
-- The primary's streaming replicas (pg_stat_replication): state, lag in time and in bytes
-- of WAL not yet replayed.
SELECT application_name AS name, coalesce(host(client_addr), 'local') AS client, state, sync_state,
       extract(epoch FROM replay_lag)::float8 AS replay_lag_seconds,
       CASE WHEN pg_is_in_recovery() THEN NULL
            ELSE pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)::bigint END AS behind_bytes
FROM pg_stat_replication
ORDER BY application_name;

-- name: db_replica_state()^
-- On the read host: whether it replays WAL, and how far behind the primary it is (the time
-- since the last replayed transaction; bytes received but not yet replayed).
SELECT pg_is_in_recovery() AS in_recovery,
       CASE WHEN pg_is_in_recovery() THEN
           extract(epoch FROM now() - pg_last_xact_replay_timestamp())::float8 END AS lag_seconds,
       CASE WHEN pg_is_in_recovery() THEN
           pg_wal_lsn_diff(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn())::bigint END AS unreplayed_bytes;

-- name: db_backend(pid)^
-- One backend as cancel and terminate check it: what it is and runs, and whether this
-- login may signal it (a superuser; or not a superuser's backend and this login has the
-- privileges of its role or of pg_signal_backend).
SELECT a.pid, a.backend_type, a.state, a.datname AS database, a.usename AS username,
       a.application_name AS application, a.query, a.query_start,
       extract(epoch FROM now() - a.query_start)::float8 AS query_seconds,
       coalesce(r.rolsuper, false) AS superuser,
       a.pid = pg_backend_pid() AS me,
       (SELECT rolsuper FROM pg_roles WHERE rolname = current_user)
         OR (NOT coalesce(r.rolsuper, false) AND a.usesysid IS NOT NULL
             AND (pg_has_role(current_user, a.usesysid, 'USAGE')
                  OR pg_has_role(current_user, 'pg_signal_backend', 'USAGE'))) AS may_signal,
       current_user AS login
FROM pg_stat_activity a
LEFT JOIN pg_roles r ON r.oid = a.usesysid
WHERE a.pid = :pid;

-- name: db_cancel_backend(pid)$
-- Cancel the backend's current query (the session stays).
SELECT pg_cancel_backend(:pid);

-- name: db_terminate_backend(pid, timeout_ms)$
-- Close the backend's session (its open transaction rolls back), waiting up to timeout_ms
-- for it to end.
SELECT pg_terminate_backend(:pid, :timeout_ms);

-- name: db_relation(name)^
-- The table or index `name` resolves to (search_path applies), its kind and size, and its
-- name quoted by the server for a maintenance command; NULL when there is none.
SELECT c.oid::bigint AS oid, c.relkind::text AS kind, format('%I.%I', n.nspname, c.relname) AS quoted,
       n.nspname AS schema, c.relname AS name, pg_total_relation_size(c.oid) AS bytes,
       pg_has_role(current_user, c.relowner, 'USAGE')
         OR (SELECT rolsuper FROM pg_roles WHERE rolname = current_user)
         OR (EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'pg_maintain')
             AND pg_has_role(current_user, 'pg_maintain', 'USAGE')) AS may_maintain,
       pg_get_userbyid(c.relowner) AS owner
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.oid = to_regclass(:name) AND c.relkind IN ('r', 'p', 'm', 'i', 'I');

-- name: db_database()^
-- This database as the maintenance login sees it: its name quoted, its size, and whether
-- the login may vacuum and reindex all of it (its owner, a superuser, or pg_maintain).
SELECT current_database() AS name, format('%I', current_database()) AS quoted,
       pg_database_size(current_database()) AS bytes,
       pg_has_role(current_user, d.datdba, 'USAGE')
         OR (SELECT rolsuper FROM pg_roles WHERE rolname = current_user)
         OR (EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'pg_maintain')
             AND pg_has_role(current_user, 'pg_maintain', 'USAGE')) AS may_maintain,
       pg_get_userbyid(d.datdba) AS owner, current_user AS login
FROM pg_database d
WHERE d.datname = current_database();

-- name: db_relation_bytes(oid)$
-- A table's or index's total size now (NULL once it is gone).
SELECT pg_total_relation_size(:oid::bigint::oid);

-- name: db_database_bytes()$
-- This database's size now.
SELECT pg_database_size(current_database());

-- name: db_vacuum_progress(pid)^
-- How far a running VACUUM of backend `pid` is (pg_stat_progress_vacuum).
SELECT p.phase, p.relid::regclass::text AS relation, p.heap_blks_total, p.heap_blks_scanned,
       p.heap_blks_vacuumed, p.index_vacuum_count
FROM pg_stat_progress_vacuum p
WHERE p.pid = :pid;

-- name: db_analyze_progress(pid)^
-- How far a running ANALYZE of backend `pid` is (pg_stat_progress_analyze).
SELECT p.phase, p.relid::regclass::text AS relation, p.sample_blks_total, p.sample_blks_scanned
FROM pg_stat_progress_analyze p
WHERE p.pid = :pid;

-- name: db_index_progress(pid)^
-- How far a running REINDEX or CREATE INDEX of backend `pid` is
-- (pg_stat_progress_create_index).
SELECT p.command, p.phase, p.index_relid::regclass::text AS relation, p.blocks_total, p.blocks_done,
       p.tuples_total, p.tuples_done, p.partitions_total, p.partitions_done
FROM pg_stat_progress_create_index p
WHERE p.pid = :pid;

-- name: db_wal_bytes()$
-- The WAL on disk (pg_ls_waldir: pg_monitor or a superuser may read it).
SELECT coalesce(sum(size), 0)::bigint FROM pg_ls_waldir();

-- name: db_smoke()$
-- The manual's smoke query: the users the bot knows.
SELECT COUNT(*) FROM users;

-- name: db_counters()^
-- This database's transaction counters (what the watch step compares over its minutes).
SELECT xact_commit, xact_rollback, deadlocks
FROM pg_stat_database
WHERE datname = current_database();

-- name: db_bloat_measured(limit)
-- The largest tables' bloat as pgstattuple_approx measures it (dead tuples + free space),
-- where the extension is installed; no rows otherwise. Called through its name found at run
-- time, so the query stands (and explains) on a database without the extension.
SELECT n.nspname AS schema, c.relname AS table_name,
       (xpath('/row/b/text()',
              query_to_xml(format('SELECT dead_tuple_len + approx_free_space AS b FROM %s(%s::regclass)',
                                  to_regprocedure('pgstattuple_approx(regclass)')::regproc, c.oid),
                           false, true, '')))[1]::text::bigint AS bloat_bytes
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind = 'r'
  AND to_regprocedure('pgstattuple_approx(regclass)') IS NOT NULL
  AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%'
  AND n.nspname NOT LIKE 'pg_temp%'
ORDER BY pg_total_relation_size(c.oid) DESC
LIMIT :limit;
