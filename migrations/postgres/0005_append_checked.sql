-- The event store's write after a collision with another process (eventstore/pgwriter.py), as one
-- statement: take the sequencer, check under it that every stream of the batch is still at the
-- version the batch was decided on, and only then insert. The sequencer's row lock lives only
-- inside the server's execution of that one statement (the caller sends it as its own
-- transaction), never across a client round trip, so a client that stalls holds up no one.
-- base: the position before the batch's first event, NULL if a stream moved (nothing written);
-- current: the streams' versions as found under the lock, in the order of check_streams.
CREATE FUNCTION es_append_checked(
    n bigint,
    check_streams text[],
    check_versions bigint[],
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
        RETURN;
    END IF;
    UPDATE es_sequencer SET position = position + n WHERE id = 1 RETURNING position - n INTO base;
    INSERT INTO es_events (position, stream, version, type, data, metadata, idempotency_key)
    SELECT base + r.ord, r.stream, r.version, r.type, r.data, r.metadata::jsonb, r.key
      FROM unnest(streams, versions, types, datas, metas, keys)
           WITH ORDINALITY AS r(stream, version, type, data, metadata, key, ord);
    PERFORM pg_notify('es_events', (base + n)::text);
END
$$;
