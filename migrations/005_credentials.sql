-- The trust boundary: robots are provisioned with tokens, operators hold keys with scopes. Only SHA-256 hashes of
-- the secrets are stored; the secrets themselves are shown once, when they are made.

-- Fleet tags, for keys limited to a part of the fleet.
ALTER TABLE robots ADD COLUMN tags text[] NOT NULL DEFAULT '{}';

CREATE TABLE credentials (
    credential_id integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind text NOT NULL CHECK (kind IN ('robot', 'key')),
    name text NOT NULL,
    -- A robot token writes that robot's readings and nothing else.
    robot_key integer REFERENCES robots (robot_key) ON DELETE CASCADE,
    -- A key's scopes: read, stream, export, ingest, admin.
    scopes text[] NOT NULL DEFAULT '{}',
    -- A key limited to these robots, or to robots carrying this tag (NULL: the whole fleet).
    robot_ids text[],
    fleet_tag text,
    token_hash bytea NOT NULL UNIQUE,
    token_prefix text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    -- Set on the old token when a robot's token is rotated: both work until then.
    expires_at timestamptz,
    revoked_at timestamptz,
    CHECK ((kind = 'robot') = (robot_key IS NOT NULL))
);
CREATE INDEX credentials_robot ON credentials (robot_key) WHERE robot_key IS NOT NULL;

-- Bumped in the transaction of every revocation and rotation: each API process polls it and drops its cache of
-- verified tokens when it moves, so a revocation reaches every worker within the poll interval.
CREATE TABLE credential_epoch (
    only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    epoch bigint NOT NULL
);
INSERT INTO credential_epoch (epoch) VALUES (0);
