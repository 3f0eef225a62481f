-- Market and stop orders' protection prices in the read tables:
-- `orders.protection_price`, the worst price such an order may trade at (the
-- edge of the price band that the risk actor set, which a buy's hold covers),
-- so that order history shows it as the live order does. `orders.price` stays
-- the client's own limit price, NULL for market and stop orders.
--
-- The engine journals the protection price as the spec's `price` of a market
-- or stop order (OrderAccepted, OrderRejected). This migration keeps to its
-- own column and function: project_journal, whatever its body is when this
-- runs, keeps that body under the name project_journal_tables, and
-- project_journal runs it, then fills the range's protection prices
-- (project_protection_prices). That function reads the range's rows of
-- journal_batches as texts and parses only the payloads whose canonical text
-- holds a market or stop spec ("type":"market" or "type":"stop", which no
-- string value can hold: canonical JSON escapes its quotes); a row without
-- one is skipped before it is split into events.
--
-- What it costs PostgreSQL, beside the rest of the projection (a throwaway
-- timer over the engine benchmark's journal, 100,000 orders and 364,000
-- events, projected in 99 ranges on a loaded two-core machine): 0.23-0.25 s
-- against 7.6-9.0 s when no order is a market or stop order, as in that
-- benchmark; 1.7-2.4 s against 4.9-6.3 s with every order made a market
-- order, most of it in writing the protection price into the rows just
-- inserted.

ALTER TABLE orders ADD COLUMN protection_price numeric;

CREATE FUNCTION project_protection_prices(first_id bigint, last_id bigint) RETURNS void
LANGUAGE plpgsql
SET search_path FROM CURRENT  -- a restore (pg_dump) runs with an empty search_path
SET plan_cache_mode = force_generic_plan
AS $$
BEGIN
    -- Materialized, so that each spec is parsed once (inlined, every use of a field
    -- parsed the payload again: twice as slow).
    WITH f AS MATERIALIZED (
        SELECT s.order_id, s.type, s.price
        FROM journal_batches b,
             unnest(string_to_array(b.types, E'\n'), string_to_array(b.payloads, E'\n'))
                 WITH ORDINALITY AS e (type, payload, n),
             json_to_record(e.payload::json -> 'spec') AS s (order_id bigint, type text,
                                                              price bigint)
        WHERE b.id BETWEEN first_id / 16777216 AND last_id / 16777216
          AND (strpos(b.payloads, '"type":"market"') > 0
               OR strpos(b.payloads, '"type":"stop"') > 0)
          AND journal_position(b.id, e.n) BETWEEN first_id AND last_id
          AND e.type IN ('OrderAccepted', 'OrderRejected')
          AND (strpos(e.payload, '"type":"market"') > 0 OR strpos(e.payload, '"type":"stop"') > 0)
    )
    UPDATE orders o SET protection_price = f.price * i.tick_size
    FROM f, instruments i
    WHERE f.type IN ('market', 'stop') AND f.price > 0
      AND o.order_id = f.order_id AND i.symbol = o.symbol;
END
$$;

ALTER FUNCTION project_journal(bigint, bigint) RENAME TO project_journal_tables;

CREATE FUNCTION project_journal(first_id bigint, last_id bigint) RETURNS void
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
BEGIN
    PERFORM project_journal_tables(first_id, last_id);
    PERFORM project_protection_prices(first_id, last_id);
END
$$;

-- The orders projected before this migration.
SELECT project_protection_prices(0, last_id) FROM projection;
