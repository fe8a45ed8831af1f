-- The schema the migrations make (migrations/NNN_*.sql, applied in order). Generated, never edited:
-- .venv/bin/python -m tests.support.schema DATABASE_URL > docs/schema.sql

CREATE SCHEMA public;

COMMENT ON SCHEMA public IS 'standard public schema';

CREATE TYPE public.robot_status AS ENUM (
    'idle',
    'moving',
    'working',
    'charging',
    'error'
);

CREATE FUNCTION public.haversine_m(lat1 double precision, lon1 double precision, lat2 double precision, lon2 double precision) RETURNS double precision
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    RETURN ((12742000)::double precision * asin((((1)::double precision - (0.000000000000001)::double precision) * sqrt((power(sin((radians((((lat2 - lat1) + (0.000000001)::double precision) - (0.000000001)::double precision)) / (2)::double precision)), (2)::double precision) + ((cos(radians(lat1)) * cos(radians(lat2))) * power(sin((radians((((lon2 - lon1) + (0.000000001)::double precision) - (0.000000001)::double precision)) / (2)::double precision)), (2)::double precision)))))));

CREATE PROCEDURE public.refresh_minutes(IN job_id integer, IN config jsonb)
    LANGUAGE plpgsql
    AS $$
DECLARE
    settled bigint := txid_snapshot_xmin(txid_current_snapshot());
    until timestamptz := time_bucket(INTERVAL '1 minute', now());
BEGIN
    COMMIT;
    CALL refresh_continuous_aggregate('telemetry_1m', NULL, until);
    UPDATE rollup_state
    SET refreshed_xid = greatest(refreshed_xid, settled), refreshed_to = greatest(refreshed_to, until);
    COMMIT;
END
$$;

CREATE TABLE public.telemetry (
    robot_key integer NOT NULL,
    "time" timestamp with time zone NOT NULL,
    latitude double precision,
    longitude double precision,
    battery_level double precision NOT NULL,
    battery_voltage double precision,
    status public.robot_status,
    seq bigint,
    heading double precision,
    speed double precision,
    altitude double precision,
    accuracy double precision,
    pose_frame text,
    pose_x double precision,
    pose_y double precision,
    pose_yaw double precision,
    fields jsonb,
    stored_at timestamp with time zone DEFAULT transaction_timestamp(),
    stored_xid bigint DEFAULT txid_current()
);

CREATE TABLE public.alert_anchors (
    robot_id text NOT NULL COLLATE pg_catalog."C",
    within_m double precision NOT NULL,
    latitude double precision NOT NULL,
    longitude double precision NOT NULL,
    since timestamp with time zone NOT NULL
);

CREATE TABLE public.alert_rules (
    rule_id integer NOT NULL,
    name text NOT NULL,
    kind text NOT NULL,
    robot_id text COLLATE pg_catalog."C",
    fleet_tag text,
    condition jsonb NOT NULL,
    enabled boolean DEFAULT true NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    positions integer DEFAULT 0 NOT NULL,
    CONSTRAINT alert_rules_check CHECK (((robot_id IS NULL) OR (fleet_tag IS NULL))),
    CONSTRAINT alert_rules_positions_check CHECK ((positions >= 0))
);

CREATE TABLE public.alert_rules_epoch (
    only_row boolean DEFAULT true NOT NULL,
    epoch bigint NOT NULL,
    CONSTRAINT alert_rules_epoch_only_row_check CHECK (only_row)
);

ALTER TABLE public.alert_rules ALTER COLUMN rule_id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME public.alert_rules_rule_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);

CREATE TABLE public.alerts (
    alert_id bigint NOT NULL,
    rule_id integer,
    rule_name text NOT NULL,
    kind text NOT NULL,
    robot_id text NOT NULL COLLATE pg_catalog."C",
    reason text NOT NULL,
    opened_at timestamp with time zone DEFAULT now() NOT NULL,
    acknowledged_at timestamp with time zone,
    acknowledged_by text,
    note text,
    resolved_at timestamp with time zone,
    resolution text,
    sequence integer DEFAULT 1 NOT NULL,
    CONSTRAINT alerts_check CHECK (((acknowledged_at IS NULL) = (acknowledged_by IS NULL)))
);

ALTER TABLE public.alerts ALTER COLUMN alert_id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME public.alerts_alert_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);

CREATE TABLE public.credential_epoch (
    only_row boolean DEFAULT true NOT NULL,
    epoch bigint NOT NULL,
    CONSTRAINT credential_epoch_only_row_check CHECK (only_row)
);

CREATE TABLE public.credentials (
    credential_id integer NOT NULL,
    kind text NOT NULL,
    name text NOT NULL,
    robot_key integer,
    scopes text[] DEFAULT '{}'::text[] NOT NULL,
    robot_ids text[],
    fleet_tag text,
    token_hash bytea NOT NULL,
    token_prefix text NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    expires_at timestamp with time zone,
    revoked_at timestamp with time zone,
    broker_hash text,
    CONSTRAINT credentials_check CHECK (((kind = 'robot'::text) = (robot_key IS NOT NULL))),
    CONSTRAINT credentials_kind_check CHECK ((kind = ANY (ARRAY['robot'::text, 'key'::text]))),
    CONSTRAINT limited_keys_hold_no_admin CHECK ((NOT (('admin'::text = ANY (scopes)) AND ((robot_ids IS NOT NULL) OR (fleet_tag IS NOT NULL)))))
);

ALTER TABLE public.credentials ALTER COLUMN credential_id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME public.credentials_credential_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);

CREATE TABLE public.derived_state (
    singleton boolean DEFAULT true NOT NULL,
    derived_xid bigint NOT NULL,
    CONSTRAINT derived_state_singleton_check CHECK (singleton)
);

CREATE TABLE public.robot_latest (
    robot_key integer NOT NULL,
    "time" timestamp with time zone NOT NULL,
    latitude double precision,
    longitude double precision,
    battery_level double precision NOT NULL,
    battery_voltage double precision,
    status public.robot_status,
    seq bigint,
    heading double precision,
    speed double precision,
    altitude double precision,
    accuracy double precision,
    pose_frame text,
    pose_x double precision,
    pose_y double precision,
    pose_yaw double precision,
    fields jsonb,
    received_at timestamp with time zone NOT NULL
);

CREATE TABLE public.robots (
    robot_key integer NOT NULL,
    robot_id text NOT NULL COLLATE pg_catalog."C",
    first_seen timestamp with time zone DEFAULT now() NOT NULL,
    tags text[] DEFAULT '{}'::text[] NOT NULL,
    id_skeleton text
);

ALTER TABLE public.robots ALTER COLUMN robot_key ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME public.robots_robot_key_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);

CREATE TABLE public.rollup_state (
    singleton boolean DEFAULT true NOT NULL,
    status_gap_s integer,
    rolled_up_xid bigint,
    refreshed_xid bigint,
    refreshed_to timestamp with time zone,
    CONSTRAINT rollup_state_singleton_check CHECK (singleton)
);

CREATE TABLE public.schema_migrations (
    version integer NOT NULL,
    name text NOT NULL,
    applied_at timestamp with time zone DEFAULT now() NOT NULL
);

CREATE TABLE public.telemetry_15m (
    robot_key integer NOT NULL,
    period timestamp with time zone NOT NULL,
    first_at timestamp with time zone NOT NULL,
    last_at timestamp with time zone NOT NULL,
    last_status public.robot_status,
    idle integer NOT NULL,
    moving integer NOT NULL,
    working integer NOT NULL,
    charging integer NOT NULL,
    error integer NOT NULL,
    idle_s double precision NOT NULL,
    moving_s double precision NOT NULL,
    working_s double precision NOT NULL,
    charging_s double precision NOT NULL,
    error_s double precision NOT NULL,
    located integer NOT NULL,
    first_latitude double precision,
    first_longitude double precision,
    last_latitude double precision,
    last_longitude double precision,
    metres double precision NOT NULL
);

CREATE VIEW public.telemetry_1m AS
 SELECT _materialized_hypertable_5.robot_key,
    _materialized_hypertable_5.minute,
    _materialized_hypertable_5.readings,
    _materialized_hypertable_5.battery_sum,
    _materialized_hypertable_5.battery_min,
    _materialized_hypertable_5.battery_max,
    _materialized_hypertable_5.voltage_sum,
    _materialized_hypertable_5.voltage_count,
    _materialized_hypertable_5.voltage_min,
    _materialized_hypertable_5.voltage_max,
    _materialized_hypertable_5.located_at,
    _materialized_hypertable_5.latitude,
    _materialized_hypertable_5.longitude,
    _materialized_hypertable_5.idle,
    _materialized_hypertable_5.moving,
    _materialized_hypertable_5.working,
    _materialized_hypertable_5.charging,
    _materialized_hypertable_5.error
   FROM _timescaledb_internal._materialized_hypertable_5
  WHERE (_materialized_hypertable_5.minute < COALESCE(_timescaledb_functions.to_timestamp(_timescaledb_functions.cagg_watermark(5)), '-infinity'::timestamp with time zone))
UNION ALL
 SELECT telemetry.robot_key,
    public.time_bucket('00:01:00'::interval, telemetry."time") AS minute,
    count(*) AS readings,
    sum(telemetry.battery_level) AS battery_sum,
    min(telemetry.battery_level) AS battery_min,
    max(telemetry.battery_level) AS battery_max,
    sum(telemetry.battery_voltage) AS voltage_sum,
    count(telemetry.battery_voltage) AS voltage_count,
    min(telemetry.battery_voltage) AS voltage_min,
    max(telemetry.battery_voltage) AS voltage_max,
    max(telemetry."time") FILTER (WHERE (telemetry.latitude IS NOT NULL)) AS located_at,
    public.last(telemetry.latitude, telemetry."time") FILTER (WHERE (telemetry.latitude IS NOT NULL)) AS latitude,
    public.last(telemetry.longitude, telemetry."time") FILTER (WHERE (telemetry.latitude IS NOT NULL)) AS longitude,
    count(*) FILTER (WHERE (telemetry.status = 'idle'::public.robot_status)) AS idle,
    count(*) FILTER (WHERE (telemetry.status = 'moving'::public.robot_status)) AS moving,
    count(*) FILTER (WHERE (telemetry.status = 'working'::public.robot_status)) AS working,
    count(*) FILTER (WHERE (telemetry.status = 'charging'::public.robot_status)) AS charging,
    count(*) FILTER (WHERE (telemetry.status = 'error'::public.robot_status)) AS error
   FROM public.telemetry
  WHERE (telemetry."time" >= COALESCE(_timescaledb_functions.to_timestamp(_timescaledb_functions.cagg_watermark(5)), '-infinity'::timestamp with time zone))
  GROUP BY telemetry.robot_key, (public.time_bucket('00:01:00'::interval, telemetry."time"));

CREATE TABLE public.webhook_deliveries (
    delivery_id bigint NOT NULL,
    webhook_id integer NOT NULL,
    alert_id bigint NOT NULL,
    event text NOT NULL,
    body text NOT NULL,
    state text DEFAULT 'pending'::text NOT NULL,
    attempts integer DEFAULT 0 NOT NULL,
    next_attempt_at timestamp with time zone DEFAULT now() NOT NULL,
    last_status integer,
    last_error text,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    delivered_at timestamp with time zone,
    CONSTRAINT webhook_deliveries_state_check CHECK ((state = ANY (ARRAY['pending'::text, 'delivered'::text, 'failed'::text])))
);

ALTER TABLE public.webhook_deliveries ALTER COLUMN delivery_id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME public.webhook_deliveries_delivery_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);

CREATE TABLE public.webhooks (
    webhook_id integer NOT NULL,
    url text NOT NULL,
    description text DEFAULT ''::text NOT NULL,
    secret text NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL
);

ALTER TABLE public.webhooks ALTER COLUMN webhook_id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME public.webhooks_webhook_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);

ALTER TABLE ONLY public.alert_anchors
    ADD CONSTRAINT alert_anchors_pkey PRIMARY KEY (robot_id, within_m);

ALTER TABLE ONLY public.alert_rules_epoch
    ADD CONSTRAINT alert_rules_epoch_pkey PRIMARY KEY (only_row);

ALTER TABLE ONLY public.alert_rules
    ADD CONSTRAINT alert_rules_pkey PRIMARY KEY (rule_id);

ALTER TABLE ONLY public.alerts
    ADD CONSTRAINT alerts_pkey PRIMARY KEY (alert_id);

ALTER TABLE ONLY public.credential_epoch
    ADD CONSTRAINT credential_epoch_pkey PRIMARY KEY (only_row);

ALTER TABLE ONLY public.credentials
    ADD CONSTRAINT credentials_pkey PRIMARY KEY (credential_id);

ALTER TABLE ONLY public.credentials
    ADD CONSTRAINT credentials_token_hash_key UNIQUE (token_hash);

ALTER TABLE ONLY public.derived_state
    ADD CONSTRAINT derived_state_pkey PRIMARY KEY (singleton);

ALTER TABLE ONLY public.robot_latest
    ADD CONSTRAINT robot_latest_pkey PRIMARY KEY (robot_key);

ALTER TABLE ONLY public.robots
    ADD CONSTRAINT robots_pkey PRIMARY KEY (robot_key);

ALTER TABLE ONLY public.robots
    ADD CONSTRAINT robots_robot_id_key UNIQUE (robot_id);

ALTER TABLE ONLY public.rollup_state
    ADD CONSTRAINT rollup_state_pkey PRIMARY KEY (singleton);

ALTER TABLE ONLY public.schema_migrations
    ADD CONSTRAINT schema_migrations_pkey PRIMARY KEY (version);

ALTER TABLE ONLY public.webhook_deliveries
    ADD CONSTRAINT webhook_deliveries_pkey PRIMARY KEY (delivery_id);

ALTER TABLE ONLY public.webhooks
    ADD CONSTRAINT webhooks_pkey PRIMARY KEY (webhook_id);

CREATE UNIQUE INDEX alerts_one_open ON public.alerts USING btree (rule_id, robot_id) WHERE (resolved_at IS NULL);

CREATE INDEX alerts_robot ON public.alerts USING btree (robot_id, alert_id DESC);

CREATE INDEX credentials_robot ON public.credentials USING btree (robot_key) WHERE (robot_key IS NOT NULL);

CREATE INDEX robots_id_skeleton ON public.robots USING btree (id_skeleton);

CREATE INDEX robots_without_skeleton ON public.robots USING btree (robot_key) WHERE (id_skeleton IS NULL);

CREATE UNIQUE INDEX telemetry_15m_robot_period ON public.telemetry_15m USING btree (robot_key, period DESC);

CREATE UNIQUE INDEX telemetry_robot_time ON public.telemetry USING btree (robot_key, "time" DESC);

CREATE INDEX telemetry_stored_at ON public.telemetry USING brin (stored_at) WITH (autosummarize='on');

CREATE INDEX telemetry_stored_xid ON public.telemetry USING brin (stored_xid) WITH (autosummarize='on');

CREATE INDEX webhook_deliveries_by_webhook ON public.webhook_deliveries USING btree (webhook_id, delivery_id DESC);

CREATE INDEX webhook_deliveries_due ON public.webhook_deliveries USING btree (next_attempt_at) WHERE (state = 'pending'::text);

ALTER TABLE ONLY public.alerts
    ADD CONSTRAINT alerts_rule_id_fkey FOREIGN KEY (rule_id) REFERENCES public.alert_rules(rule_id) ON DELETE SET NULL;

ALTER TABLE ONLY public.credentials
    ADD CONSTRAINT credentials_robot_key_fkey FOREIGN KEY (robot_key) REFERENCES public.robots(robot_key) ON DELETE CASCADE;

ALTER TABLE ONLY public.webhook_deliveries
    ADD CONSTRAINT webhook_deliveries_alert_id_fkey FOREIGN KEY (alert_id) REFERENCES public.alerts(alert_id) ON DELETE CASCADE;

ALTER TABLE ONLY public.webhook_deliveries
    ADD CONSTRAINT webhook_deliveries_webhook_id_fkey FOREIGN KEY (webhook_id) REFERENCES public.webhooks(webhook_id) ON DELETE CASCADE;

-- TimescaleDB hypertables:
--   telemetry | 1 | True
--   telemetry_15m | 1 | False

-- TimescaleDB dimensions:
--   telemetry | time | 1 day
--   telemetry_15m | period | 1 day

-- TimescaleDB columnstore:
--   telemetry | robot_key | 1 | None | None
--   telemetry | time | None | 1 | False

-- TimescaleDB continuous aggregates:
--   telemetry_1m | False

-- TimescaleDB jobs:
--   policy_compression | 12:00:00 | telemetry
--   refresh_minutes | 00:00:30 | 
