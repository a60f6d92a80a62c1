-- What the console's runtime role (ops_runtime, see 0006_runtime_role) may do on the
-- reference copy of the business tables: read them all, and change only the columns the
-- runbooks' named queries change (sql/queries/*.sql): cancel-and-refund sets an order's
-- status (set_order_canceled), node enable/disable flips ptero_nodes.enabled
-- (set_node_enabled); both lock their row first (SELECT ... FOR UPDATE needs UPDATE on a
-- column). Provisioning writes orders from the provisioning functions, not the console.
-- On a production database a DBA grants the same on the business's own tables.

GRANT SELECT ON users, pricing_config, plans, ptero_nodes, orders, external_accounts,
    credit_transactions TO ops_runtime;

GRANT UPDATE (status, updated_at) ON orders TO ops_runtime;
GRANT UPDATE (enabled) ON ptero_nodes TO ops_runtime;
