-- The event store's write after a collision with another process (eventstore/pgwriter.py), as one
-- statement: take the sequencer, check under it that every stream of the batch is still at the
-- version the batch was decided on, and only then insert. The sequencer's row lock lives only
-- inside the server's execution of that one statement (the caller sends it as its own
-- transaction), never across a client round trip, so a client that stalls holds up no one.
-- A stream that moved meanwhile refuses the batch (base NULL, nothing written), unless `rebase`
-- says that the batch's decision does not depend on the versions (every append of it expects
-- ANY version and has no idempotency keys): then its rows move up by as many versions as their
-- stream moved, as the caller's planner would have numbered them, so that a busy writer in another
-- process can never starve this one.
-- base: the position before the batch's first event, or NULL; current: the streams' versions as
-- found under the lock, in the order of check_streams.
CREATE FUNCTION es_append_checked(
    n bigint,
    check_streams text[],
    check_versions bigint[],
    rebase boolean,
    streams text[],
    versions bigint[],
    types text[],
    datas bytea[],
    metas text[],
    keys text[],
    OUT base bigint,
    OUT current bigint[]
) LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    PERFORM 1 FROM es_sequencer WHERE id = 1 FOR UPDATE;
    -- A volatile function's every query takes a fresh snapshot: what committed before the lock
    -- was granted is seen here.
    SELECT array_agg(
               coalesce((SELECT e.version FROM es_events e WHERE e.stream = c.stream
                         ORDER BY e.version DESC LIMIT 1), 0)
               ORDER BY c.ord)
      INTO current
      FROM unnest(check_streams) WITH ORDINALITY AS c(stream, ord);
    IF current IS DISTINCT FROM check_versions THEN
        IF NOT rebase THEN
            RETURN;
        END IF;
        versions := ARRAY(
            SELECT r.version + c.found - c.assumed
              FROM unnest(streams, versions) WITH ORDINALITY AS r(stream, version, ord)
              JOIN unnest(check_streams, check_versions, current) AS c(stream, assumed, found)
                ON c.stream = r.stream
             ORDER BY r.ord);
    END IF;
    UPDATE es_sequencer SET position = position + n WHERE id = 1 RETURNING position - n INTO base;
    INSERT INTO es_events (position, stream, version, type, data, metadata, idempotency_key)
    SELECT base + r.ord, r.stream, r.version, r.type, r.data, r.metadata::jsonb, r.key
      FROM unnest(streams, versions, types, datas, metas, keys)
           WITH ORDINALITY AS r(stream, version, type, data, metadata, key, ord);
    PERFORM pg_notify('es_events', (base + n)::text);
END
$$;
