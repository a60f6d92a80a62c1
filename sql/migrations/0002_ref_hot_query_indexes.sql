-- Indexes for the console's hot queries on the business tables (stuck/error orders,
-- recent orders, keyset paging). At 1M orders the stuck/error queries drop from ~40-50 ms
-- (sequential scan) to ~0.1-2 ms. On a production database, create these by hand with
-- CREATE INDEX CONCURRENTLY instead (see README, "Production indexes").

-- Stuck orders (status = 'paid', oldest first) and the success-rate window.
CREATE INDEX IF NOT EXISTS orders_paid_error_created_idx
    ON orders (created_at) INCLUDE (status)
    WHERE status IN ('paid', 'error');

-- Error orders, newest update first.
CREATE INDEX IF NOT EXISTS orders_error_updated_idx
    ON orders (updated_at DESC)
    WHERE status = 'error';

-- Recent orders and keyset paging through all of them: (created_at, id).
CREATE INDEX IF NOT EXISTS orders_created_id_idx ON orders (created_at DESC, id DESC);

-- Average provisioning time over the last 24 h.
CREATE INDEX IF NOT EXISTS orders_provisioned_updated_idx
    ON orders (updated_at)
    WHERE status = 'provisioned';

-- Node capacity: sum of plan RAM over live orders per node.
CREATE INDEX IF NOT EXISTS orders_live_node_idx
    ON orders (node_id, plan_id)
    WHERE status IN ('paid', 'provisioning', 'installing', 'provisioned', 'active');

-- Search by server name (case-insensitive prefix) and by email.
CREATE INDEX IF NOT EXISTS orders_server_name_lower_idx ON orders (lower(server_name) text_pattern_ops);
CREATE INDEX IF NOT EXISTS users_email_lower_idx ON users (lower(email) text_pattern_ops);
