-- The journal: every event of every stream, the system of record.
--
-- id       global commit order: one writer (the journal actor) appends one batch
--          per transaction under an advisory lock, so ids grow in commit order.
-- stream   a symbol, '$accounts' or '$symbols'.
-- seq      the event's number in its stream: 1, 2, 3, ... with no gaps.
-- type     the event class (trading_engine.storage.codec.EVENT_TYPES).
-- payload  every field of the event, seq and ts included, as the codec encodes it.
-- ts       when it happened, nanoseconds since the epoch.
-- hash     sha256(previous hash of the same stream || type || canonical payload
--          text); the first event of a stream starts from the empty string.
CREATE TABLE journal (
    id      bigserial PRIMARY KEY,
    stream  text   NOT NULL,
    seq     bigint NOT NULL CHECK (seq > 0),
    type    text   NOT NULL,
    payload jsonb  NOT NULL,
    ts      bigint NOT NULL,
    hash    bytea  NOT NULL CHECK (length(hash) = 32),
    CONSTRAINT journal_stream_seq_key UNIQUE (stream, seq)
);
