-- Alerting: rules, the alerts they open (kept after they resolve: that is the history), webhook endpoints, and
-- the webhook outbox, written in the transaction of each alert transition so no transition is ever undelivered.

CREATE TABLE alert_rules (
    rule_id integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name text NOT NULL,
    kind text NOT NULL,
    -- Scope: one robot, robots with a tag, or (both NULL) the whole fleet.
    robot_id text COLLATE "C",
    fleet_tag text,
    -- The kind's parameters, as the API took them (app.alerts.rules decodes them).
    condition jsonb NOT NULL,
    enabled boolean NOT NULL DEFAULT true,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CHECK (robot_id IS NULL OR fleet_tag IS NULL)
);

-- Bumped in the transaction of every rule change: each API process polls it and reloads its rules when it moves.
CREATE TABLE alert_rules_epoch (
    only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    epoch bigint NOT NULL
);
INSERT INTO alert_rules_epoch (epoch) VALUES (0);

CREATE TABLE alerts (
    alert_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- A deleted rule's alerts stay, with what they were about (kind, rule_name).
    rule_id integer REFERENCES alert_rules (rule_id) ON DELETE SET NULL,
    rule_name text NOT NULL,
    kind text NOT NULL,
    robot_id text COLLATE "C" NOT NULL,
    reason text NOT NULL,
    opened_at timestamptz NOT NULL DEFAULT now(),
    acknowledged_at timestamptz,
    acknowledged_by text,
    note text,
    resolved_at timestamptz,
    resolution text,
    CHECK ((acknowledged_at IS NULL) = (acknowledged_by IS NULL))
);
-- Exactly one open alert per (rule, robot), however many processes evaluate at once: opening is an INSERT that
-- conflicts here and does nothing.
CREATE UNIQUE INDEX alerts_one_open ON alerts (rule_id, robot_id) WHERE resolved_at IS NULL;
CREATE INDEX alerts_robot ON alerts (robot_id, alert_id DESC);

CREATE TABLE webhooks (
    webhook_id integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    url text NOT NULL,
    description text NOT NULL DEFAULT '',
    -- The signing secret must be read back to sign each delivery, so it cannot be stored as a hash. It is shown
    -- once, at creation, and never returned or logged afterwards.
    secret text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE webhook_deliveries (
    delivery_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    webhook_id integer NOT NULL REFERENCES webhooks (webhook_id) ON DELETE CASCADE,
    alert_id bigint NOT NULL REFERENCES alerts (alert_id) ON DELETE CASCADE,
    event text NOT NULL,
    body text NOT NULL,  -- the exact JSON sent on every attempt
    state text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'delivered', 'failed')),
    attempts integer NOT NULL DEFAULT 0,
    -- When the next attempt is due; while an attempt runs it is pushed out by a lease, so a process that dies
    -- mid-attempt leaves the delivery to be retried by any other once the lease ends.
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    last_status integer,
    last_error text,
    created_at timestamptz NOT NULL DEFAULT now(),
    delivered_at timestamptz
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE state = 'pending';
CREATE INDEX webhook_deliveries_by_webhook ON webhook_deliveries (webhook_id, delivery_id DESC);
