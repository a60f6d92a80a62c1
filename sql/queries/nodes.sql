-- name: node_capacity()
-- Every node with the RAM its live orders use and what is left: the runbook's capacity
-- query with the orders' status moved into the join, so nodes without orders are kept.
SELECT n.id, n.name, n.location, n.enabled, n.max_ram_gb, n.reserved_headroom_gb,
       coalesce(sum(p.ram_gb), 0)::int AS used_ram_gb,
       (n.max_ram_gb - n.reserved_headroom_gb - coalesce(sum(p.ram_gb), 0))::int AS available_ram_gb,
       count(o.id)::int AS live_servers
FROM ptero_nodes n
LEFT JOIN orders o ON o.node_id = n.id
     AND o.status IN ('paid', 'provisioning', 'installing', 'provisioned', 'active')
LEFT JOIN plans p ON p.id = o.plan_id
GROUP BY n.id
ORDER BY n.enabled DESC, n.name;

-- name: active_plans()
-- The plans customers can order, smallest first per game (what the forecast counts in).
SELECT id, game, name, ram_gb
FROM plans
WHERE is_active
ORDER BY game, ram_gb, id;

-- name: node_for_update(name)^
-- One node, locked for an enable/disable, with how many live servers it hosts.
SELECT n.id, n.name, n.enabled,
       (SELECT count(*) FROM orders o
        WHERE o.node_id = n.id
          AND o.status IN ('paid', 'provisioning', 'installing', 'provisioned', 'active'))::int AS live_servers
FROM ptero_nodes n
WHERE n.name = :name
FOR UPDATE OF n;

-- name: set_node_enabled(name, enabled)!
-- Take a node into or out of the pool new orders are placed on.
UPDATE ptero_nodes SET enabled = :enabled WHERE name = :name;
