-- Database care (the Database area): what the console's runtime role needs to watch the
-- database and stop a runaway query, granted where the migrating role may grant it. Each
-- step is guarded: a managed database whose migrating role may not grant a predefined role
-- or create an extension migrates anyway, and a NOTICE says what a DBA should run.
--
-- pg_read_all_stats: the text and wait events of other roles' sessions in pg_stat_activity
--   and their statements in pg_stat_statements (without it they read "<insufficient
--   privilege>").
-- pg_signal_backend: pg_cancel_backend / pg_terminate_backend on other roles' sessions
--   (never a superuser's: PostgreSQL keeps those to superusers).
-- VACUUM, ANALYZE and REINDEX are not granted here: they need the table's owner (or, from
-- PostgreSQL 16, pg_maintain), so the console runs them as its maintenance login
-- (OPSCONSOLE_RESTORE_DSN), never as the runtime role.

DO $$
BEGIN
    GRANT pg_read_all_stats TO ops_runtime;
EXCEPTION WHEN insufficient_privilege THEN
    RAISE NOTICE '% may not grant pg_read_all_stats: other roles'' query text stays hidden from the '
        'console until a DBA runs "GRANT pg_read_all_stats TO ops_runtime;"', current_user;
END
$$;

DO $$
BEGIN
    GRANT pg_signal_backend TO ops_runtime;
EXCEPTION WHEN insufficient_privilege THEN
    RAISE NOTICE '% may not grant pg_signal_backend: the console can cancel only its own role''s '
        'queries until a DBA runs "GRANT pg_signal_backend TO ops_runtime;"', current_user;
END
$$;

-- pg_stat_statements (the Slow queries tab): installed when the migrating role may; it
-- records only once the server loads it (shared_preload_libraries), which the console
-- checks and explains.
DO $$
BEGIN
    CREATE EXTENSION IF NOT EXISTS pg_stat_statements;
EXCEPTION WHEN insufficient_privilege OR undefined_file OR feature_not_supported OR invalid_parameter_value
    OR object_not_in_prerequisite_state THEN
    RAISE NOTICE 'pg_stat_statements was not installed (%): the Slow queries tab shows the live '
        'long-running queries and how to enable it', SQLERRM;
END
$$;
