-- Order lists in the read tables: `orders.list_id`, the order list (POST /order-lists)
-- an order belongs to, NULL for none. A list's member reaches `orders` as any order
-- does, once accepted or rejected (a member waiting for its working order is not an
-- order yet); its OrderAccepted or OrderRejected names the list in its spec.
--
-- As 0016 does, this keeps to a function of its own: project_journal, whatever its body
-- is when this runs, keeps that body under the name project_journal_before_lists and
-- runs it, then project_order_lists fills in the range's members. That function parses
-- only the payloads whose canonical text holds "list_id": followed by a digit other
-- than 0 (no string value can hold it: canonical JSON escapes its quotes), so a range
-- without any costs one string search per batch.

ALTER TABLE orders ADD COLUMN list_id bigint;

CREATE FUNCTION project_order_lists(first_id bigint, last_id bigint) RETURNS void
LANGUAGE plpgsql
SET search_path FROM CURRENT  -- a restore (pg_dump) runs with an empty search_path
SET plan_cache_mode = force_generic_plan
AS $$
BEGIN
    WITH f AS MATERIALIZED (
        SELECT s.*
        FROM journal_batches b,
             unnest(string_to_array(b.types, E'\n'), string_to_array(b.payloads, E'\n'))
                 WITH ORDINALITY AS e (type, payload, n),
             json_to_record(e.payload::json -> 'spec') AS s (order_id bigint, list_id bigint)
        WHERE b.id BETWEEN first_id / 16777216 AND last_id / 16777216
          AND b.payloads ~ '"list_id":[1-9]'
          AND journal_position(b.id, e.n) BETWEEN first_id AND last_id
          AND e.type IN ('OrderAccepted', 'OrderRejected')
          AND e.payload ~ '"list_id":[1-9]'
    )
    UPDATE orders o
    SET list_id = f.list_id
    FROM f
    WHERE o.order_id = f.order_id;
END
$$;

ALTER FUNCTION project_journal(bigint, bigint) RENAME TO project_journal_before_lists;

CREATE FUNCTION project_journal(first_id bigint, last_id bigint) RETURNS void
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
BEGIN
    PERFORM project_journal_before_lists(first_id, last_id);
    PERFORM project_order_lists(first_id, last_id);
END
$$;

-- The orders projected before this migration.
SELECT project_order_lists(0, last_id) FROM projection;
