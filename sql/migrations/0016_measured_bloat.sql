-- Measured bloat for the Database area's Tables tab: pgstattuple_approx (dead tuples and free
-- space, read from the visibility map and the pages not all-visible) where the extension can
-- be installed, and pg_stat_scan_tables for the runtime role, which may run it. Guarded as in
-- 0015: without either, the tab shows the statistics-based estimate.

DO $$
BEGIN
    CREATE EXTENSION IF NOT EXISTS pgstattuple;
EXCEPTION WHEN insufficient_privilege OR undefined_file OR feature_not_supported THEN
    RAISE NOTICE 'pgstattuple was not installed (%): table bloat stays a statistics-based estimate', SQLERRM;
END
$$;

DO $$
BEGIN
    GRANT pg_stat_scan_tables TO ops_runtime;
EXCEPTION WHEN insufficient_privilege THEN
    RAISE NOTICE '% may not grant pg_stat_scan_tables: table bloat stays an estimate until a DBA runs '
        '"GRANT pg_stat_scan_tables TO ops_runtime;"', current_user;
END
$$;
