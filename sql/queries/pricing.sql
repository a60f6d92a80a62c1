-- name: pricing_games()
-- Every game of pricing_config with its hourly price, whether it is on sale, how many live
-- servers it has (orders in a live status, through their plan's game) and the console's
-- last recorded change of it (recorded_cost differs from cost_per_hour when the price was
-- changed outside the console: by the bot's admin command or by hand in psql).
WITH live AS (
    SELECT p.game, count(*)::int AS servers
    FROM orders o
    JOIN plans p ON p.id = o.plan_id
    WHERE o.status IN ('paid', 'provisioning', 'installing', 'provisioned', 'active')
    GROUP BY p.game
)
SELECT c.game_type, c.display_name, c.cost_per_hour, c.enabled, c.updated_at,
       coalesce(live.servers, 0) AS live_servers,
       h.at AS changed_at, h.operator AS changed_by, h.change, h.old_cost, h.new_cost AS recorded_cost,
       h.new_enabled AS recorded_enabled, h.reason
FROM pricing_config c
LEFT JOIN live ON live.game = c.game_type
LEFT JOIN LATERAL (
    SELECT at, operator, change, old_cost, new_cost, new_enabled, reason
    FROM ops.pricing_history
    WHERE game_type = c.game_type
    ORDER BY at DESC, id DESC
    LIMIT 1
) h ON true
ORDER BY c.game_type;

-- name: pricing_history(game_type, limit)
-- The recorded changes, newest first: every game's, or one game's when game_type is given.
SELECT h.id, h.at, h.game_type, h.operator, h.change, h.old_cost, h.new_cost, h.old_enabled,
       h.new_enabled, h.reason
FROM ops.pricing_history h
WHERE :game_type::text IS NULL OR h.game_type = :game_type::text
ORDER BY h.at DESC, h.id DESC
LIMIT :limit;

-- name: pricing_as_of(at)
-- What each game cost and whether it was on sale at a moment: the state after the last
-- change recorded at or before it, else the state before the first change after it, else
-- (nothing recorded around it) the price now. `source` says which.
SELECT c.game_type, c.display_name,
       coalesce(before.new_cost, after.old_cost, c.cost_per_hour) AS cost_per_hour,
       coalesce(before.new_enabled, after.old_enabled, c.enabled) AS enabled,
       CASE WHEN before.id IS NOT NULL THEN 'changed'
            WHEN after.id IS NOT NULL THEN 'before first change'
            ELSE 'no change recorded' END AS source,
       before.at AS since, before.operator AS changed_by, after.at AS next_change_at
FROM pricing_config c
LEFT JOIN LATERAL (
    SELECT id, at, operator, new_cost, new_enabled
    FROM ops.pricing_history
    WHERE game_type = c.game_type AND at <= :at::timestamptz
    ORDER BY at DESC, id DESC
    LIMIT 1
) before ON true
LEFT JOIN LATERAL (
    SELECT id, at, old_cost, old_enabled
    FROM ops.pricing_history
    WHERE game_type = c.game_type AND at > :at::timestamptz
    ORDER BY at, id
    LIMIT 1
) after ON true
ORDER BY c.game_type;

-- name: game_for_update(game_type)^
-- One game's price and availability, locked for a change, with its live servers.
SELECT c.game_type, c.display_name, c.cost_per_hour, c.enabled,
       (SELECT count(*) FROM orders o JOIN plans p ON p.id = o.plan_id
        WHERE p.game = c.game_type
          AND o.status IN ('paid', 'provisioning', 'installing', 'provisioned', 'active'))::int AS live_servers
FROM pricing_config c
WHERE c.game_type = :game_type
FOR UPDATE OF c;

-- name: set_game_price(game_type, cost_per_hour)!
-- Set a game's hourly price in credits (the AGIS manual's UPDATE pricing_config).
UPDATE pricing_config SET cost_per_hour = :cost_per_hour, updated_at = now() WHERE game_type = :game_type;

-- name: set_game_enabled(game_type, enabled)!
-- Put a game on sale or take it off.
UPDATE pricing_config SET enabled = :enabled, updated_at = now() WHERE game_type = :game_type;

-- name: record_pricing_change(game_type, operator, change, old_cost, new_cost, old_enabled, new_enabled, reason)<!
-- Append one change to the price history (in the transaction that made the change).
INSERT INTO ops.pricing_history
    (game_type, operator, change, old_cost, new_cost, old_enabled, new_enabled, reason)
VALUES (:game_type, :operator, :change, :old_cost, :new_cost, :old_enabled, :new_enabled, :reason)
RETURNING id, at;
