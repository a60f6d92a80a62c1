-- pg_dump, run by `opsconsole backup run` as the console's login, reads every table and
-- sequence it dumps. The reference business tables are readable already (0007); their
-- sequences are not. On a production database a DBA grants the same on the business's own
-- sequences (or runs backups as a login holding pg_read_all_data).
GRANT SELECT ON ALL SEQUENCES IN SCHEMA public TO ops_runtime;
