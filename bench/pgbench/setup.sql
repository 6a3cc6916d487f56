-- Run once on the database before create_and_succeed.sql, outside the timed run.
--
-- The service makes its ids in Go as UUIDv7 (time-ordered, so the primary key
-- indexes grow at their right edge). Postgres 15 has only gen_random_uuid()
-- (v4, random: index inserts all over the tree), which would slow pgbench
-- down for a reason the service does not share. This is the same layout: a
-- 48-bit Unix millisecond timestamp, then random bits, version 7, variant 2.
CREATE OR REPLACE FUNCTION bench_uuidv7() RETURNS uuid
LANGUAGE sql VOLATILE PARALLEL SAFE AS $$
    SELECT encode(
        set_bit(set_bit(
            overlay(uuid_send(gen_random_uuid())
                placing substring(int8send(floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint) FROM 3)
                FROM 1 FOR 6),
            52, 1), 53, 1),
        'hex')::uuid
$$;
