-- Post-only orders in the read tables: `orders.post_only`, from the order's
-- journaled spec, so that order history shows every field the live order
-- does. One function now marks both flags of a range's orders, reduce-only
-- (0004) and post-only; like 0005's, it parses only the specs whose compact
-- JSON text holds one of them set.

ALTER TABLE orders ADD COLUMN post_only boolean NOT NULL DEFAULT false;

CREATE FUNCTION project_order_flags(first_id bigint, last_id bigint) RETURNS void
LANGUAGE plpgsql
SET search_path FROM CURRENT  -- a restore (pg_dump) runs with an empty search_path
SET plan_cache_mode = force_generic_plan
AS $$
BEGIN
    UPDATE orders o
    SET reduce_only = coalesce((f.spec->>'reduce_only')::boolean, false),
        post_only = coalesce((f.spec->>'post_only')::boolean, false)
    FROM (
        SELECT e.p->'spec' AS spec
        FROM journal_range(first_id, last_id) AS e
        WHERE e.type IN ('OrderAccepted', 'OrderRejected')
          AND (strpos(e.p::text, '"reduce_only":true') > 0
               OR strpos(e.p::text, '"post_only":true') > 0)
    ) AS f
    WHERE o.order_id = (f.spec->>'order_id')::bigint;
END
$$;

CREATE OR REPLACE FUNCTION project_journal(first_id bigint, last_id bigint) RETURNS void
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
BEGIN
    PERFORM project_journal_0002(first_id, last_id);  -- defined in 0002_read_tables.sql
    PERFORM project_order_flags(first_id, last_id);
END
$$;

DROP FUNCTION project_reduce_only(bigint, bigint);

-- The orders projected before this migration.
SELECT project_order_flags(0, last_id) FROM projection;
