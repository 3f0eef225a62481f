-- Reduce-only orders in the read tables: `orders.reduce_only`, taken from the
-- order's journaled spec (in OrderAccepted or OrderRejected). A spec journaled
-- before the field existed has no `reduce_only` key: an ordinary order, false.
--
-- An applied migration is never edited, and restating all of 0002's
-- project_journal here would leave two copies to read. So that function keeps
-- its body under the name project_journal_0002, and project_journal runs it,
-- then marks the range's reduce-only orders (project_reduce_only). That costs
-- one more read of the range's order events, about 5% of a projection, and
-- writes only the reduce-only rows. The same function backfills the rows
-- projected before this migration, so the two can't disagree.

ALTER TABLE orders ADD COLUMN reduce_only boolean NOT NULL DEFAULT false;

CREATE FUNCTION project_reduce_only(first_id bigint, last_id bigint) RETURNS void
LANGUAGE plpgsql
SET search_path FROM CURRENT  -- a restore (pg_dump) runs with an empty search_path
SET plan_cache_mode = force_generic_plan
AS $$
BEGIN
    UPDATE orders o SET reduce_only = true
    FROM journal_range(first_id, last_id) AS e
    WHERE e.type IN ('OrderAccepted', 'OrderRejected')
      AND (e.p->'spec'->>'reduce_only')::boolean  -- NULL (no key): an ordinary order
      AND o.order_id = (e.p->'spec'->>'order_id')::bigint
      AND NOT o.reduce_only;
END
$$;

ALTER FUNCTION project_journal(bigint, bigint) RENAME TO project_journal_0002;

CREATE FUNCTION project_journal(first_id bigint, last_id bigint) RETURNS void
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
BEGIN
    PERFORM project_journal_0002(first_id, last_id);  -- defined in 0002_read_tables.sql
    PERFORM project_reduce_only(first_id, last_id);
END
$$;

-- The orders projected before this migration.
SELECT project_reduce_only(0, last_id) FROM projection;
