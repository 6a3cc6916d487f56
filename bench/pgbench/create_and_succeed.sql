-- One pgbench transaction = what the HTTP API runs for one
-- POST /v1/payments followed by POST /v1/payments/{id}/simulate
-- {"status":"SUCCEEDED"}, statement for statement, in the same order and
-- transactions (captured from the service with log_statement = 'all').
-- Run with -M prepared (pgx prepares and caches every statement too),
-- -D merchant_id=<uuid> -D key_hash=<hex sha256 of the API key>
-- -D notify_permille=<0-1000>, after setup.sql.
--
-- River sends its insert notification (PGNotifyMany) in a transaction only
-- when its client sent none in the last FetchCooldown, so the service sends
-- it in some of its transactions, not all: the bench counts the share in the
-- service's own run (LISTEN) and passes it as notify_permille, and each
-- transaction here sends it with that probability. It matters: a notifying
-- commit takes Postgres' global notify lock, so those commits serialize.
--
-- Other differences, neutral or in pgbench's favour: ids come from
-- bench_uuidv7() in SQL instead of Go; the event body is built by format()
-- instead of encoding/json; the once-a-minute api_keys.last_used_at touch is
-- left out.

-- POST /v1/payments ------------------------------------------------------
-- requireMerchant (db.MerchantGetByAPIKey)
SELECT k.id, k.last_used_at, m.id, m.name, m.webhook_url, m.webhook_secret,
       m.previous_webhook_secret, m.previous_webhook_secret_expires_at, m.created_at, m.updated_at
  FROM api_keys k JOIN merchants m ON m.id = k.merchant_id
 WHERE k.key_hash = decode(:key_hash, 'hex') AND k.revoked_at IS NULL;
BEGIN;
-- db.PaymentCreateTx
WITH p AS (
    INSERT INTO payments (id, merchant_id, amount, currency, gateway, status, reference, description, metadata, provider_reference)
    VALUES (bench_uuidv7(), :merchant_id, 5000, 'XAF', 'sandbox', 'PENDING', 'bench', NULL, '{"order":"42"}', NULL)
    RETURNING id, merchant_id, amount, currency, gateway, status, reference, description,
        metadata, provider_reference, failure_reason, created_at, updated_at)
SELECT p.id, p.created_at, p.updated_at, m.webhook_url FROM p JOIN merchants m ON m.id = p.merchant_id
\gset p_
-- db.eventEmitTx: the event (its id and body are made in Go by the service)
INSERT INTO events (id, merchant_id, type, object_id, payload, created_at)
SELECT e.id, :merchant_id::uuid, 'payment.pending', :p_id::uuid,
    format('{"id":"%s","event":"payment.pending","timestamp":"%s","data":{"id":"%s","object":"payment","amount":5000,"currency":"XAF","gateway":"sandbox","status":"PENDING","reference":"bench","description": null,"metadata":{"order":"42"},"provider_reference": null,"failure_reason": null,"created_at":"%s","updated_at":"%s"}}',
        e.id, e.at, :p_id::text, :p_created_at::text, :p_updated_at::text)::json,
    e.at
  FROM (SELECT bench_uuidv7() AS id, now() AS at) e
RETURNING id, payload, bench_uuidv7() AS delivery_id
\gset e_
-- db.deliveryCreateTx: River's InsertTx (JobInsertFastMany, one row)
WITH raw_job_data AS (
    SELECT
        unnest(ARRAY[0]::bigint[]) AS id,
        unnest(ARRAY[jsonb_build_object('delivery_id', :e_delivery_id::uuid, 'merchant_id', :merchant_id::uuid)]::jsonb[]) AS args,
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
-- db.deliveryCreateTx: the ledger row
INSERT INTO webhook_deliveries
        (id, merchant_id, event_id, event_type, payload, status, next_retry_at, job_id, created_at, updated_at)
    VALUES (:e_delivery_id, :merchant_id, :e_id, 'payment.pending', :e_payload, 'PENDING', now(), :j_id, now(), now());
COMMIT;

-- POST /v1/payments/{id}/simulate {"status":"SUCCEEDED"} -----------------
-- requireMerchant
SELECT k.id, k.last_used_at, m.id, m.name, m.webhook_url, m.webhook_secret,
       m.previous_webhook_secret, m.previous_webhook_secret_expires_at, m.created_at, m.updated_at
  FROM api_keys k JOIN merchants m ON m.id = k.merchant_id
 WHERE k.key_hash = decode(:key_hash, 'hex') AND k.revoked_at IS NULL;
-- handlePaymentSimulate: db.PaymentGet (is it a sandbox payment?)
SELECT id, merchant_id, amount, currency, gateway, status, reference, description,
       metadata, provider_reference, failure_reason, created_at, updated_at
  FROM payments WHERE id = :p_id AND merchant_id = :merchant_id;
BEGIN;
-- db.PaymentTransitionTx: lock, check, update
SELECT p.id, p.merchant_id, p.amount, p.currency, p.gateway, p.status,
       p.reference, p.description, p.metadata, p.provider_reference, p.failure_reason, p.created_at, p.updated_at,
       m.webhook_url
  FROM payments p JOIN merchants m ON m.id = p.merchant_id
 WHERE p.id = :p_id AND (:merchant_id::uuid IS NULL OR p.merchant_id = :merchant_id)
   FOR UPDATE OF p;
UPDATE payments SET status = 'SUCCEEDED', failure_reason = COALESCE(NULL, failure_reason), updated_at = now()
 WHERE id = :p_id
RETURNING id, merchant_id, amount, currency, gateway, status, reference, description,
    metadata, provider_reference, failure_reason, created_at, updated_at
\gset u_
-- db.eventEmitTx
INSERT INTO events (id, merchant_id, type, object_id, payload, created_at)
SELECT e.id, :merchant_id::uuid, 'payment.succeeded', :p_id::uuid,
    format('{"id":"%s","event":"payment.succeeded","timestamp":"%s","data":{"id":"%s","object":"payment","amount":5000,"currency":"XAF","gateway":"sandbox","status":"SUCCEEDED","reference":"bench","description": null,"metadata":{"order":"42"},"provider_reference": null,"failure_reason": null,"created_at":"%s","updated_at":"%s"}}',
        e.id, e.at, :p_id::text, :p_created_at::text, :u_updated_at::text)::json,
    e.at
  FROM (SELECT bench_uuidv7() AS id, now() AS at) e
RETURNING id, payload, bench_uuidv7() AS delivery_id
\gset e_
-- db.deliveryCreateTx: River's InsertTx
WITH raw_job_data AS (
    SELECT
        unnest(ARRAY[0]::bigint[]) AS id,
        unnest(ARRAY[jsonb_build_object('delivery_id', :e_delivery_id::uuid, 'merchant_id', :merchant_id::uuid)]::jsonb[]) AS args,
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
-- db.deliveryCreateTx: the ledger row
INSERT INTO webhook_deliveries
        (id, merchant_id, event_id, event_type, payload, status, next_retry_at, job_id, created_at, updated_at)
    VALUES (:e_delivery_id, :merchant_id, :e_id, 'payment.succeeded', :e_payload, 'PENDING', now(), :j_id, now(), now());
COMMIT;
