-- Two partial indexes of 0002 that no query uses, dropped.
--
-- orders_open    (symbol, user_id) of the open orders: the engine serves open
--                orders from its books, and a user's orders in the table are
--                found through orders_user_id.
-- trades_pending (executed_at) of the unsettled trades: the unsettled trades
--                are counted (`trading-engine audit`), never looked up by time.
--
-- Each cost the projection an index entry per row it wrote, and since a
-- column in an index's condition counts as indexed, every change of an
-- order's status or a trade's settlement wrote a new version of the row in
-- every index of its table: with them gone those updates can stay on their
-- page (HOT). On the engine benchmark's journal (100,000 orders, in 100
-- ranges) the projection took 7.7 s instead of 8.1.

DROP INDEX orders_open;
DROP INDEX trades_pending;
