-- Take-profit, trailing-stop, iceberg and quote-sized market orders in the read tables,
-- shown as the live order shows them:
-- - `orders.price`: a take_profit_limit order's limit price, and a
--   trailing_stop_limit order's limit as its current stop price makes it;
-- - `orders.protection_price`: a take_profit or trailing stop's protection
--   price (the engine journals it as the spec's `price`, as it does a stop's);
-- - `orders.stop_price`: a trailing stop's current one, from its last
--   StopMoved event (NULL until armed);
-- - new columns `quote_quantity` (a quote-sized market order's quote amount),
--   `trailing_delta`, `trailing_bps`, `activation_price` and `limit_offset`
--   (a trailing stop's terms) and `display_quantity` (an iceberg's slice);
--   NULL for any other order. (An iceberg's hidden part changes with each fill
--   and is the owner's alone: the live order shows it.)
--
-- As 0015 does, this keeps to a function of its own: project_journal, whatever
-- its body is when this runs, keeps that body under the name
-- project_journal_before_order_types and runs it, then project_order_types
-- fills in the range's orders of these types. That function parses only the
-- payloads whose canonical text names such a type or quote amount
-- ("type":"take_profit or "type":"trailing_stop, or "quote_quantity": or
-- "display_quantity": followed by a digit other than 0, which no string value
-- can hold: canonical JSON
-- escapes its quotes) and the StopMoved events, so a range without any costs
-- a few string searches per batch.

ALTER TABLE orders
    ADD COLUMN quote_quantity numeric,
    ADD COLUMN trailing_delta numeric,
    ADD COLUMN trailing_bps integer,
    ADD COLUMN activation_price numeric,
    ADD COLUMN limit_offset numeric,
    ADD COLUMN display_quantity numeric;

CREATE FUNCTION project_order_types(first_id bigint, last_id bigint) RETURNS void
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
             json_to_record(e.payload::json -> 'spec')
                 AS s (order_id bigint, type text, price bigint, quote_quantity numeric,
                       trailing_delta bigint, trailing_bps integer, activation_price bigint,
                       limit_offset bigint, display_quantity bigint)
        WHERE b.id BETWEEN first_id / 16777216 AND last_id / 16777216
          AND (strpos(b.payloads, '"type":"take_profit') > 0
               OR strpos(b.payloads, '"type":"trailing_stop') > 0
               OR b.payloads ~ '"(quote|display)_quantity":[1-9]')
          AND journal_position(b.id, e.n) BETWEEN first_id AND last_id
          AND e.type IN ('OrderAccepted', 'OrderRejected')
          AND (strpos(e.payload, '"type":"take_profit') > 0
               OR strpos(e.payload, '"type":"trailing_stop') > 0
               OR e.payload ~ '"(quote|display)_quantity":[1-9]')
    )
    UPDATE orders o
    SET price = CASE WHEN f.type IN ('limit', 'stop_limit', 'take_profit_limit')
                     THEN f.price * i.tick_size END,
        protection_price = CASE WHEN f.type NOT IN ('limit', 'stop_limit', 'take_profit_limit')
                                     AND f.price > 0
                                THEN f.price * i.tick_size END,
        quote_quantity = CASE WHEN f.quote_quantity > 0
                              THEN f.quote_quantity
                                   / 10::numeric ^ (i.definition ->> 'quote_decimals')::int
                         END,
        trailing_delta = NULLIF(f.trailing_delta, 0) * i.tick_size,
        trailing_bps = NULLIF(f.trailing_bps, 0),
        activation_price = NULLIF(f.activation_price, 0) * i.tick_size,
        limit_offset = CASE WHEN f.type = 'trailing_stop_limit'
                            THEN f.limit_offset * i.tick_size END,
        display_quantity = NULLIF(f.display_quantity, 0) * i.lot_size
    FROM f, instruments i
    WHERE o.order_id = f.order_id AND i.symbol = o.symbol;

    -- A trailing stop's stop price: its last move in the range (the limit follows it).
    WITH m AS MATERIALIZED (
        SELECT DISTINCT ON (v.order_id) v.order_id, v.stop_price
        FROM journal_batches b,
             unnest(string_to_array(b.types, E'\n'), string_to_array(b.payloads, E'\n'))
                 WITH ORDINALITY AS e (type, payload, n),
             json_to_record(e.payload::json) AS v (order_id bigint, stop_price bigint)
        WHERE b.id BETWEEN first_id / 16777216 AND last_id / 16777216
          AND strpos(b.types, 'StopMoved') > 0
          AND journal_position(b.id, e.n) BETWEEN first_id AND last_id
          AND e.type = 'StopMoved'
        ORDER BY v.order_id, journal_position(b.id, e.n) DESC
    )
    UPDATE orders o
    SET stop_price = m.stop_price * i.tick_size,
        price = CASE
            WHEN o.type <> 'trailing_stop_limit' THEN o.price
            WHEN o.side = 'sell'
                THEN greatest(m.stop_price * i.tick_size - o.limit_offset, o.protection_price,
                              i.tick_size)
            ELSE least(m.stop_price * i.tick_size + o.limit_offset, o.protection_price)
        END
    FROM m, instruments i
    WHERE o.order_id = m.order_id AND i.symbol = o.symbol;
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
