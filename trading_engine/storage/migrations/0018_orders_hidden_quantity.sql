-- An iceberg's hidden part in the read tables: `orders.hidden_quantity`, the lots of its
-- remainder the book does not show, as the live order (core/views.py, OrderRecord)
-- counts them from its events:
--   IcebergRefilled            sets it to the event's `hidden`;
--   OrderAmended, place lost   sets it to 0 (until the IcebergRefilled that follows);
--   OrderCancelled, -Expired   set it to 0;
--   OrderReduced               takes its `quantity` off, down to 0 at most;
--   OrderAmended, place kept   takes off what the amend took off the remainder, which is
--                              what it took off the quantity (the quantity before it less
--                              its `quantity`: an amend changes neither filled nor
--                              cancelled), down to 0 at most.
-- Taking a off and then b off, down to 0 each time, leaves max(h - a - b, 0): so an
-- order's value at a range's end is its last setting in the range (else its value at
-- the range's start) less every cut after it, down to 0. NULL for an iceberg not yet
-- projected by this function, which the reads show as 0, and for any other order.
--
-- The quantity before a place-keeping amend is the previous amend's in the range, else
-- the order's at the range's start: the spec's, for an order accepted in the range;
-- for an older one, `orders.quantity` before the range's projection updates it. So
-- project_journal runs project_iceberg_hidden for the older orders before the body it
-- had when this ran (kept as project_journal_before_hidden), and for the range's new
-- orders after it, once their rows exist. Both calls leave at once, after an index
-- probe and a string search per batch, unless an iceberg hides lots or one is placed or
-- refilled in the range; then only the cancels, cuts and amends of those icebergs are
-- parsed (their `order_id` is read off the payload's text first).

ALTER TABLE orders ADD COLUMN hidden_quantity numeric;

CREATE INDEX orders_hiding ON orders (order_id) WHERE hidden_quantity > 0;

CREATE FUNCTION project_iceberg_hidden(first_id bigint, last_id bigint, accepted_in_range boolean)
RETURNS void
LANGUAGE plpgsql
SET search_path FROM CURRENT  -- a restore (pg_dump) runs with an empty search_path
SET plan_cache_mode = force_generic_plan
AS $$
BEGIN
    IF accepted_in_range THEN
        IF NOT EXISTS (
            SELECT 1 FROM journal_batches b
            WHERE b.id BETWEEN first_id / 16777216 AND last_id / 16777216
              AND b.payloads ~ '"display_quantity":[1-9]'
        ) THEN
            RETURN;
        END IF;
    ELSIF NOT EXISTS (SELECT 1 FROM orders WHERE hidden_quantity > 0)
          AND NOT EXISTS (
              SELECT 1 FROM journal_batches b
              WHERE b.id BETWEEN first_id / 16777216 AND last_id / 16777216
                AND strpos(b.types, 'IcebergRefilled') > 0
          ) THEN
        RETURN;
    END IF;

    WITH e AS MATERIALIZED (
        SELECT journal_position(b.id, e.n) AS pos, e.type, e.payload,
               substring(e.payload FROM '"order_id":([0-9]+)')::bigint AS order_id
        FROM journal_batches b,
             unnest(string_to_array(b.types, E'\n'), string_to_array(b.payloads, E'\n'))
                 WITH ORDINALITY AS e (type, payload, n)
        WHERE b.id BETWEEN first_id / 16777216 AND last_id / 16777216
          AND journal_position(b.id, e.n) BETWEEN first_id AND last_id
          AND e.type IN ('OrderAccepted', 'IcebergRefilled', 'OrderReduced', 'OrderAmended',
                         'OrderCancelled', 'OrderExpired')
    ),
    -- The icebergs whose hidden part may change, in lots at the range's start.
    start AS MATERIALIZED (
        SELECT s.order_id, s.quantity::numeric AS quantity, 0::numeric AS hidden
        FROM e, json_to_record(e.payload::json -> 'spec') AS s (order_id bigint, quantity bigint)
        WHERE accepted_in_range
          AND e.type = 'OrderAccepted' AND e.payload ~ '"display_quantity":[1-9]'
        UNION ALL
        SELECT o.order_id, o.quantity / i.lot_size, coalesce(o.hidden_quantity, 0) / i.lot_size
        FROM orders o JOIN instruments i ON i.symbol = o.symbol
        WHERE NOT accepted_in_range
          AND (o.hidden_quantity > 0
               OR o.order_id IN (SELECT order_id FROM e WHERE type = 'IcebergRefilled'))
    ),
    ev AS (
        SELECT e.pos, e.type, v.order_id, v.hidden, v.quantity, v.priority_kept
        FROM e JOIN start s ON s.order_id = e.order_id,
             json_to_record(e.payload::json)
                 AS v (order_id bigint, hidden bigint, quantity bigint, priority_kept boolean)
        WHERE e.type <> 'OrderAccepted'
    ),
    steps AS (
        SELECT ev.order_id, ev.pos, s.hidden AS start_hidden,
               CASE WHEN ev.type = 'IcebergRefilled' THEN ev.hidden
                    WHEN ev.type IN ('OrderCancelled', 'OrderExpired') THEN 0
                    WHEN ev.type = 'OrderAmended' AND NOT ev.priority_kept THEN 0
               END AS reset,
               CASE WHEN ev.type = 'OrderReduced' THEN ev.quantity
                    WHEN ev.type = 'OrderAmended' AND ev.priority_kept
                        THEN coalesce(lag(ev.quantity) OVER amends, s.quantity) - ev.quantity
               END AS cut
        FROM ev JOIN start s USING (order_id)
        WINDOW amends AS (PARTITION BY ev.order_id, ev.type = 'OrderAmended' ORDER BY ev.pos)
    ),
    last_reset AS (
        SELECT *, max(pos) FILTER (WHERE reset IS NOT NULL) OVER (PARTITION BY order_id) AS at
        FROM steps
    ),
    f AS (
        SELECT order_id,
               greatest(
                   coalesce((array_agg(reset ORDER BY pos DESC)
                                 FILTER (WHERE reset IS NOT NULL))[1], min(start_hidden))
                   - coalesce(sum(cut) FILTER (WHERE at IS NULL OR pos > at), 0),
                   0) AS hidden
        FROM last_reset
        GROUP BY order_id
    )
    UPDATE orders o
    SET hidden_quantity = f.hidden * i.lot_size
    FROM f, instruments i
    WHERE o.order_id = f.order_id AND i.symbol = o.symbol;
END
$$;

ALTER FUNCTION project_journal(bigint, bigint) RENAME TO project_journal_before_hidden;

CREATE FUNCTION project_journal(first_id bigint, last_id bigint) RETURNS void
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
BEGIN
    PERFORM project_iceberg_hidden(first_id, last_id, false);
    PERFORM project_journal_before_hidden(first_id, last_id);
    PERFORM project_iceberg_hidden(first_id, last_id, true);
END
$$;

-- The orders projected before this migration: each iceberg from its start.
SELECT project_iceberg_hidden(0, last_id, true) FROM projection;
