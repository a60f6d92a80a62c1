-- The pricing runbook (sql/queries/pricing.sql set_game_price, set_game_enabled) changes a
-- game's hourly price and whether it is on sale, after locking its row (SELECT ... FOR
-- UPDATE needs UPDATE on a column): the runtime role may change exactly those columns of
-- the reference pricing_config. On a production database a DBA grants the same on the
-- business's own table.
GRANT UPDATE (cost_per_hour, enabled, updated_at) ON pricing_config TO ops_runtime;
