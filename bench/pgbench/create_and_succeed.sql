-- One pgbench transaction = what the HTTP API runs for one
-- POST /v1/payments followed by POST /v1/payments/{id}/simulate
-- {"status":"SUCCEEDED"} by a merchant with a webhook URL (one endpoint),
-- statement for statement, in the same order and transactions.
-- bench/pgbench_test.go records the service's statements for that pair and
-- fails if this script drifts from them; it compares each statement's shape
-- (whitespace, comments, case, values and the casts on them ignored) and
-- allows exactly the differences listed here:
--   * values: ids come from bench_uuidv7() in SQL instead of Go, the key hash
--     from decode(:key_hash, 'hex'), literals stand for parameters, and
--     River's batch arguments are one-element ARRAY[...]s;
--   * the event insert (marked [shape only]) builds its id and body in SQL
--     (format() instead of encoding/json, and the job args and delivery id
--     beside them for \gset), so it is compared by the tables it reads and
--     the column list it inserts, not text;
--   * River's insert notification (PGNotifyMany) is sent in the \if :notify
--     block with the share the service sent (below);
--   * the once-a-minute api_keys.last_used_at touch and River's
--     once-per-client server version probe are left out.
-- Run with -M prepared (pgx prepares and caches every statement too),
-- -D merchant_id=<uuid> -D key_hash=<hex sha256 of the API key>
-- -D notify_permille=<0-1000>, after setup.sql. pgbench reads ":name" as a
-- variable even inside a string literal, hence the '": null' in the bodies.
--
-- River sends its insert notification (PGNotifyMany) in a transaction only
-- when its client sent none in the last FetchCooldown, so the service sends
-- it in some of its transactions, not all: the bench counts the share in the
-- service's own run (LISTEN) and passes it as notify_permille, and each
-- transaction here sends it with that probability. It matters: a notifying
-- commit takes Postgres' global notify lock, so those commits serialize.

-- POST /v1/payments ------------------------------------------------------
-- requireMerchant (db.MerchantGetByAPIKey)
SELECT k.id, k.last_used_at, m.id, m.name, m.webhook_url, m.webhook_secret,
       m.previous_webhook_secret, m.previous_webhook_secret_expires_at, m.created_at, m.updated_at
  FROM api_keys k JOIN merchants m ON m.id = k.merchant_id
 WHERE k.key_hash = decode(:key_hash, 'hex') AND k.revoked_at IS NULL;
BEGIN;
-- db.PaymentCreateTx
INSERT INTO payments (id, merchant_id, amount, currency, gateway, status, reference, description, metadata, provider_reference)
VALUES (bench_uuidv7(), :merchant_id, 5000, 'XAF', 'sandbox', 'PENDING', 'bench', NULL, '{"order":"42"}', NULL)
RETURNING id, merchant_id, amount, currency, gateway, status, reference, description,
       metadata, provider_reference, failure_reason, amount_received, amount_refunded,
       dispute_status, review, created_at, updated_at
\gset p_
-- db.eventEmitTx: the event and its enabled endpoints [shape only]
WITH e AS (SELECT bench_uuidv7() AS id, bench_uuidv7() AS delivery_id, now() AS at),
ev AS (
    INSERT INTO events (id, merchant_id, type, object_id, payload, created_at)
    SELECT e.id, :merchant_id::uuid, 'payment.pending', :p_id::uuid,
        format('{"id":"%s","event":"payment.pending","timestamp":"%s","data":{"id":"%s","object":"payment","amount":5000,"currency":"XAF","gateway":"sandbox","status":"PENDING","reference":"bench","description": null,"metadata":{"order":"42"},"provider_reference": null,"failure_reason": null,"amount_received": null,"amount_refunded":0,"dispute_status": null,"review": null,"created_at":"%s","updated_at":"%s"}}',
            e.id, e.at, :p_id::text, :p_created_at::text, :p_updated_at::text)::json,
        e.at
      FROM e
    RETURNING id, payload)
SELECT w.id AS endpoint_id, ev.id, ev.payload, e.delivery_id,
       jsonb_build_object('delivery_id', e.delivery_id, 'merchant_id', :merchant_id::uuid) AS job_args
  FROM webhook_endpoints w, ev, e
 WHERE w.merchant_id = :merchant_id AND w.status = 'enabled' AND w.deleted_at IS NULL
   AND ('*' = ANY (w.enabled_events) OR 'payment.pending' = ANY (w.enabled_events))
 ORDER BY w.id
\gset e_
-- db outbox: River's InsertTx (JobInsertFastMany, one row per endpoint)
WITH raw_job_data AS (
    SELECT
        unnest(ARRAY[0]::bigint[]) AS id,
        unnest(ARRAY[:e_job_args::jsonb]::jsonb[]) AS args,
        unnest(ARRAY[now()]::timestamptz[]) AS created_at,
        unnest(ARRAY['webhook_delivery']::text[]) AS kind,
        unnest(ARRAY[100]::smallint[]) AS max_attempts,
        unnest(ARRAY['{}']::jsonb[]) AS metadata,
        unnest(ARRAY[1]::smallint[]) AS priority,
        unnest(ARRAY['webhooks']::text[]) AS queue,
        unnest(ARRAY[now()]::timestamptz[]) AS scheduled_at,
        unnest(ARRAY['available']::text[]) AS state,
        unnest(ARRAY['']::text[]) AS tags,
        unnest(ARRAY[NULL]::bytea[]) AS unique_key,
        unnest(ARRAY[0]::integer[]) AS unique_states
)
INSERT INTO river_job(id, args, created_at, kind, max_attempts, metadata, priority, queue, scheduled_at, state, tags, unique_key, unique_states)
SELECT
    coalesce(nullif(id, 0), nextval('river_job_id_seq'::regclass)),
    args,
    coalesce(nullif(created_at, '0001-01-01 00:00:00 +0000'), now()) AS created_at,
    kind,
    max_attempts,
    coalesce(metadata, '{}'::jsonb) AS metadata,
    priority,
    queue,
    coalesce(nullif(scheduled_at, '0001-01-01 00:00:00 +0000'), now()) AS scheduled_at,
    state::river_job_state,
    string_to_array(tags, ',')::varchar(255)[],
    nullif(unique_key, '')::bytea,
    nullif(unique_states::integer, 0)::bit(8)
FROM raw_job_data
ON CONFLICT (unique_key)
    WHERE unique_key IS NOT NULL
        AND unique_states IS NOT NULL
        AND river_job_state_in_bitmask(unique_states, state)
    DO UPDATE SET kind = river_job.kind
RETURNING
    river_job.id, river_job.args, river_job.attempt, river_job.attempted_at, river_job.attempted_by, river_job.created_at,
    river_job.errors, river_job.finalized_at, river_job.kind, river_job.max_attempts, river_job.metadata, river_job.priority,
    river_job.queue, river_job.state, river_job.scheduled_at, river_job.tags, river_job.unique_key, river_job.unique_states,
    (xmax != 0) AS unique_skipped_as_duplicate
\gset j_
\set notify random(1, 1000) <= :notify_permille
\if :notify
-- River's insert notification (PGNotifyMany)
WITH topic_to_notify AS (
    SELECT concat(coalesce(NULL::text, current_schema()), '.', 'river_insert'::text) AS topic,
           unnest(ARRAY['{"queue": "webhooks"}']::text[]) AS payload
)
SELECT pg_notify(topic_to_notify.topic, topic_to_notify.payload) FROM topic_to_notify;
\endif
-- db outbox: the ledger row
INSERT INTO webhook_deliveries
        (id, merchant_id, event_id, event_type, payload, status, next_retry_at, job_id, endpoint_id, created_at, updated_at)
    VALUES (:e_delivery_id, :merchant_id, :e_id, 'payment.pending', :e_payload, 'PENDING', now(), :j_id, :e_endpoint_id, now(), now());
COMMIT;

-- POST /v1/payments/{id}/simulate {"status":"SUCCEEDED"} -----------------
-- requireMerchant (db.MerchantGetByAPIKey)
SELECT k.id, k.last_used_at, m.id, m.name, m.webhook_url, m.webhook_secret,
       m.previous_webhook_secret, m.previous_webhook_secret_expires_at, m.created_at, m.updated_at
  FROM api_keys k JOIN merchants m ON m.id = k.merchant_id
 WHERE k.key_hash = decode(:key_hash, 'hex') AND k.revoked_at IS NULL;
-- handlePaymentSimulate: db.PaymentGet (is it a sandbox payment?)
SELECT id, merchant_id, amount, currency, gateway, status, reference, description,
       metadata, provider_reference, failure_reason, amount_received, amount_refunded,
       dispute_status, review, created_at, updated_at
  FROM payments WHERE id = :p_id AND merchant_id = :merchant_id;
BEGIN;
-- db.PaymentTransitionTx: lock, check, update
SELECT id, merchant_id, amount, currency, gateway, status, reference, description,
       metadata, provider_reference, failure_reason, amount_received, amount_refunded,
       dispute_status, review, created_at, updated_at
  FROM payments p
 WHERE p.id = :p_id AND (:merchant_id::uuid IS NULL OR p.merchant_id = :merchant_id)
   FOR UPDATE;
UPDATE payments SET status = 'SUCCEEDED', failure_reason = NULL,
       amount_received = 5000, amount_refunded = 0, dispute_status = NULL, review = NULL, updated_at = now()
 WHERE id = :p_id
RETURNING id, merchant_id, amount, currency, gateway, status, reference, description,
       metadata, provider_reference, failure_reason, amount_received, amount_refunded,
       dispute_status, review, created_at, updated_at
\gset u_
-- db.eventEmitTx: the event and its enabled endpoints [shape only]
WITH e AS (SELECT bench_uuidv7() AS id, bench_uuidv7() AS delivery_id, now() AS at),
ev AS (
    INSERT INTO events (id, merchant_id, type, object_id, payload, created_at)
    SELECT e.id, :merchant_id::uuid, 'payment.succeeded', :p_id::uuid,
        format('{"id":"%s","event":"payment.succeeded","timestamp":"%s","data":{"id":"%s","object":"payment","amount":5000,"currency":"XAF","gateway":"sandbox","status":"SUCCEEDED","reference":"bench","description": null,"metadata":{"order":"42"},"provider_reference": null,"failure_reason": null,"amount_received":5000,"amount_refunded":0,"dispute_status": null,"review": null,"created_at":"%s","updated_at":"%s"}}',
            e.id, e.at, :p_id::text, :p_created_at::text, :u_updated_at::text)::json,
        e.at
      FROM e
    RETURNING id, payload)
SELECT w.id AS endpoint_id, ev.id, ev.payload, e.delivery_id,
       jsonb_build_object('delivery_id', e.delivery_id, 'merchant_id', :merchant_id::uuid) AS job_args
  FROM webhook_endpoints w, ev, e
 WHERE w.merchant_id = :merchant_id AND w.status = 'enabled' AND w.deleted_at IS NULL
   AND ('*' = ANY (w.enabled_events) OR 'payment.succeeded' = ANY (w.enabled_events))
 ORDER BY w.id
\gset e_
-- db outbox: River's InsertTx (JobInsertFastMany, one row per endpoint)
WITH raw_job_data AS (
    SELECT
        unnest(ARRAY[0]::bigint[]) AS id,
        unnest(ARRAY[:e_job_args::jsonb]::jsonb[]) AS args,
        unnest(ARRAY[now()]::timestamptz[]) AS created_at,
        unnest(ARRAY['webhook_delivery']::text[]) AS kind,
        unnest(ARRAY[100]::smallint[]) AS max_attempts,
        unnest(ARRAY['{}']::jsonb[]) AS metadata,
        unnest(ARRAY[1]::smallint[]) AS priority,
        unnest(ARRAY['webhooks']::text[]) AS queue,
        unnest(ARRAY[now()]::timestamptz[]) AS scheduled_at,
        unnest(ARRAY['available']::text[]) AS state,
        unnest(ARRAY['']::text[]) AS tags,
        unnest(ARRAY[NULL]::bytea[]) AS unique_key,
        unnest(ARRAY[0]::integer[]) AS unique_states
)
INSERT INTO river_job(id, args, created_at, kind, max_attempts, metadata, priority, queue, scheduled_at, state, tags, unique_key, unique_states)
SELECT
    coalesce(nullif(id, 0), nextval('river_job_id_seq'::regclass)),
    args,
    coalesce(nullif(created_at, '0001-01-01 00:00:00 +0000'), now()) AS created_at,
    kind,
    max_attempts,
    coalesce(metadata, '{}'::jsonb) AS metadata,
    priority,
    queue,
    coalesce(nullif(scheduled_at, '0001-01-01 00:00:00 +0000'), now()) AS scheduled_at,
    state::river_job_state,
    string_to_array(tags, ',')::varchar(255)[],
    nullif(unique_key, '')::bytea,
    nullif(unique_states::integer, 0)::bit(8)
FROM raw_job_data
ON CONFLICT (unique_key)
    WHERE unique_key IS NOT NULL
        AND unique_states IS NOT NULL
        AND river_job_state_in_bitmask(unique_states, state)
    DO UPDATE SET kind = river_job.kind
RETURNING
    river_job.id, river_job.args, river_job.attempt, river_job.attempted_at, river_job.attempted_by, river_job.created_at,
    river_job.errors, river_job.finalized_at, river_job.kind, river_job.max_attempts, river_job.metadata, river_job.priority,
    river_job.queue, river_job.state, river_job.scheduled_at, river_job.tags, river_job.unique_key, river_job.unique_states,
    (xmax != 0) AS unique_skipped_as_duplicate
\gset j_
\set notify random(1, 1000) <= :notify_permille
\if :notify
-- River's insert notification (PGNotifyMany)
WITH topic_to_notify AS (
    SELECT concat(coalesce(NULL::text, current_schema()), '.', 'river_insert'::text) AS topic,
           unnest(ARRAY['{"queue": "webhooks"}']::text[]) AS payload
)
SELECT pg_notify(topic_to_notify.topic, topic_to_notify.payload) FROM topic_to_notify;
\endif
-- db outbox: the ledger row
INSERT INTO webhook_deliveries
        (id, merchant_id, event_id, event_type, payload, status, next_retry_at, job_id, endpoint_id, created_at, updated_at)
    VALUES (:e_delivery_id, :merchant_id, :e_id, 'payment.succeeded', :e_payload, 'PENDING', now(), :j_id, :e_endpoint_id, now(), now());
COMMIT;
