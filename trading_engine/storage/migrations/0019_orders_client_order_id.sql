-- A user's orders by client order id, for an order the engine no longer keeps
-- (the Binance dialect's GET order by origClientOrderId reads the newest one).
--
-- Neither column changes once a row is written, so status updates stay HOT;
-- each new order with a client order id costs one more index entry.

CREATE INDEX orders_client_order_id ON orders (user_id, client_order_id, order_id DESC)
    WHERE client_order_id IS NOT NULL;
