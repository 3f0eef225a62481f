-- Take-profit and quote-sized market orders in the read tables, shown as the
-- live order shows them: `orders.price` is a take_profit_limit order's limit
-- price, `orders.protection_price` a take_profit order's protection price (the
-- engine journals it as the spec's `price`, as it does a stop's), and the new
-- `orders.quote_quantity` a quote-sized market order's quote amount (NULL for
-- any other order).
--
-- As 0015 does, this keeps to a function of its own: project_journal, whatever
-- its body is when this runs, keeps that body under the name
-- project_journal_before_order_types and runs it, then project_order_types
-- fills in the range's orders of these types. That function parses only the
-- payloads whose canonical text names such a type or quote amount
-- ("type":"take_profit, or "quote_quantity": not followed by 0, which no string
-- value can hold: canonical JSON escapes its quotes), so a range without one
-- costs a string search or two per batch.

ALTER TABLE orders ADD COLUMN quote_quantity numeric;

CREATE FUNCTION project_order_types(first_id bigint, last_id bigint) RETURNS void
LANGUAGE plpgsql
SET search_path FROM CURRENT  -- a restore (pg_dump) runs with an empty search_path
SET plan_cache_mode = force_generic_plan
AS $$
BEGIN
    WITH f AS MATERIALIZED (
        SELECT s.order_id, s.type, s.price, s.quote_quantity
        FROM journal_batches b,
             unnest(string_to_array(b.types, E'\n'), string_to_array(b.payloads, E'\n'))
                 WITH ORDINALITY AS e (type, payload, n),
             json_to_record(e.payload::json -> 'spec')
                 AS s (order_id bigint, type text, price bigint, quote_quantity numeric)
        WHERE b.id BETWEEN first_id / 16777216 AND last_id / 16777216
          AND (strpos(b.payloads, '"type":"take_profit') > 0
               OR b.payloads ~ '"quote_quantity":[1-9]')
          AND journal_position(b.id, e.n) BETWEEN first_id AND last_id
          AND e.type IN ('OrderAccepted', 'OrderRejected')
          AND (strpos(e.payload, '"type":"take_profit') > 0
               OR e.payload ~ '"quote_quantity":[1-9]')
    )
    UPDATE orders o
    SET price = CASE WHEN f.type IN ('limit', 'stop_limit', 'take_profit_limit')
                     THEN f.price * i.tick_size END,
        protection_price = CASE WHEN f.type IN ('market', 'stop', 'take_profit') AND f.price > 0
                                THEN f.price * i.tick_size END,
        quote_quantity = CASE WHEN f.quote_quantity > 0
                              THEN f.quote_quantity
                                   / 10::numeric ^ (i.definition ->> 'quote_decimals')::int
                         END
    FROM f, instruments i
    WHERE o.order_id = f.order_id AND i.symbol = o.symbol;
END
$$;

ALTER FUNCTION project_journal(bigint, bigint) RENAME TO project_journal_before_order_types;

CREATE FUNCTION project_journal(first_id bigint, last_id bigint) RETURNS void
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
BEGIN
    PERFORM project_journal_before_order_types(first_id, last_id);
    PERFORM project_order_types(first_id, last_id);
END
$$;

-- The orders projected before this migration.
SELECT project_order_types(0, last_id) FROM projection;
