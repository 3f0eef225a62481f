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

ALTER TABLE orders ADD COLUMN protection_price numeric;

CREATE FUNCTION project_protection_prices(first_id bigint, last_id bigint) RETURNS void
LANGUAGE plpgsql
SET search_path FROM CURRENT  -- a restore (pg_dump) runs with an empty search_path
SET plan_cache_mode = force_generic_plan
AS $$
BEGIN
    UPDATE orders o SET protection_price = (f.spec->>'price')::numeric * i.tick_size
    FROM (
        SELECT e.payload::json -> 'spec' AS spec
        FROM journal_batches b,
             unnest(string_to_array(b.types, E'\n'), string_to_array(b.payloads, E'\n'))
                 WITH ORDINALITY AS e (type, payload, n)
        WHERE b.id BETWEEN first_id / 16777216 AND last_id / 16777216
          AND (strpos(b.payloads, '"type":"market"') > 0
               OR strpos(b.payloads, '"type":"stop"') > 0)
          AND journal_position(b.id, e.n) BETWEEN first_id AND last_id
          AND e.type IN ('OrderAccepted', 'OrderRejected')
          AND (strpos(e.payload, '"type":"market"') > 0 OR strpos(e.payload, '"type":"stop"') > 0)
    ) AS f, instruments i
    WHERE f.spec->>'type' IN ('market', 'stop')
      AND (f.spec->>'price')::bigint > 0
      AND o.order_id = (f.spec->>'order_id')::bigint
      AND i.symbol = o.symbol;
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
