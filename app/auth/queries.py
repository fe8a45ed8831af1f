"""The auth feature's SQL, as named constants: the robot registry, credentials, provisioning and rotation. Values
go in only as $n parameters."""

from __future__ import annotations

REGISTER_ROBOTS = """
INSERT INTO robots (robot_id)
SELECT unnest($1::text[])
ON CONFLICT (robot_id) DO NOTHING
"""


SELECT_ROBOT_KEYS = "SELECT robot_id, robot_key FROM robots WHERE robot_id = ANY($1::text[])"


# What makes a credential live: not revoked, not expired (one rule for every question below).
LIVE_CREDENTIAL = "revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now())"


# A live credential by its token's hash.
SELECT_CREDENTIAL_BY_HASH = f"""
SELECT c.credential_id, c.kind, c.name, c.scopes, c.robot_ids, c.fleet_tag, c.expires_at, r.robot_id
FROM credentials c
LEFT JOIN robots r USING (robot_key)
WHERE c.token_hash = $1 AND {LIVE_CREDENTIAL}
"""


# Every live credential with its hash, newest first, at most $1: what each process loads into its token cache at
# start and after every credential change, so that a fleet's requests find their tokens verified already.
SELECT_LIVE_CREDENTIALS = f"""
SELECT c.token_hash, c.credential_id, c.kind, c.name, c.scopes, c.robot_ids, c.fleet_tag, c.expires_at, r.robot_id
FROM credentials c
LEFT JOIN robots r USING (robot_key)
WHERE {LIVE_CREDENTIAL}
ORDER BY c.created_at DESC
LIMIT $1
"""


# Of these credentials, the ones that still work: what a revocation ends is the rest.
SELECT_LIVE_CREDENTIAL_IDS = f"""
SELECT credential_id FROM credentials WHERE credential_id = ANY($1::int[]) AND {LIVE_CREDENTIAL}
"""


# The broker's accounts: each robot's newest live token that has a broker hash (one line per robot in its password
# file; during a rotation's grace the old token works over HTTP only).
SELECT_BROKER_ACCOUNTS = f"""
SELECT DISTINCT ON (r.robot_id) r.robot_id, c.broker_hash
FROM credentials c
JOIN robots r USING (robot_key)
WHERE c.kind = 'robot' AND c.broker_hash IS NOT NULL AND {LIVE_CREDENTIAL}
ORDER BY r.robot_id, c.created_at DESC
"""


SELECT_CREDENTIAL_EPOCH = "SELECT epoch FROM credential_epoch"


BUMP_CREDENTIAL_EPOCH = "UPDATE credential_epoch SET epoch = epoch + 1"


# Provisioning: a robot that already reported (with authentication off) keeps its key and history. $3: its
# id's skeleton (app.auth.lookalikes).
PROVISION_ROBOT = """
INSERT INTO robots AS r (robot_id, tags, id_skeleton) VALUES ($1, $2, $3)
ON CONFLICT (robot_id) DO UPDATE SET tags = excluded.tags, id_skeleton = excluded.id_skeleton
RETURNING robot_key
"""


# Provisionings take turns, so two look-alike ids cannot both pass the check below at once.
LOCK_PROVISIONING = "SELECT pg_advisory_xact_lock(hashtext('fleet-provisioning'))"


SELECT_LOOKALIKE_ROBOT = "SELECT robot_id FROM robots WHERE id_skeleton = $1 AND robot_id <> $2 LIMIT 1"


SELECT_ROBOTS_WITHOUT_SKELETON = "SELECT robot_key, robot_id FROM robots WHERE id_skeleton IS NULL"


SET_ROBOT_SKELETONS = """
UPDATE robots SET id_skeleton = s.id_skeleton
FROM unnest($1::int[], $2::text[]) AS s (robot_key, id_skeleton)
WHERE robots.robot_key = s.robot_key
"""


INSERT_CREDENTIAL = """
INSERT INTO credentials (kind, name, robot_key, scopes, robot_ids, fleet_tag, token_hash, token_prefix, broker_hash)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
RETURNING credential_id, created_at
"""


# Rotation: the robot's live tokens stop working at $2 (unless they already stop sooner).
EXPIRE_ROBOT_TOKENS = """
UPDATE credentials SET expires_at = $2
WHERE robot_key = $1 AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > $2)
"""


# A robot with a token that still works: provisioning it again would issue a second one (rotate instead).
SELECT_LIVE_ROBOT_TOKEN = f"""
SELECT 1 FROM credentials WHERE robot_key = $1 AND {LIVE_CREDENTIAL}
LIMIT 1
"""


# Decommissioning: the robot's row is locked, its tokens revoked, what is derived from it forgotten and, if asked,
# its history deleted (the robot's row last: its credentials go with it).
LOCK_ROBOT = "SELECT robot_key FROM robots WHERE robot_id = $1 FOR UPDATE"


REVOKE_ROBOT_TOKENS = "UPDATE credentials SET revoked_at = now() WHERE robot_key = $1 AND revoked_at IS NULL"


DELETE_ROBOT = "DELETE FROM robots WHERE robot_key = $1"  # and its credentials, by cascade


REVOKE_CREDENTIAL = """
UPDATE credentials SET revoked_at = now() WHERE credential_id = $1 AND revoked_at IS NULL
RETURNING credential_id
"""


SELECT_CREDENTIALS = """
SELECT c.credential_id, c.kind, c.name, r.robot_id, c.scopes, c.robot_ids, c.fleet_tag, c.token_prefix,
       c.created_at, c.expires_at, c.revoked_at
FROM credentials c
LEFT JOIN robots r USING (robot_key)
ORDER BY c.credential_id
"""


SELECT_ROBOT_KEY_AND_TAGS = "SELECT robot_key, tags FROM robots WHERE robot_id = $1"


SELECT_ROBOT_TAGS = "SELECT robot_id, tags FROM robots WHERE robot_id = ANY($1::text[])"


SELECT_ALL_ROBOT_TAGS = "SELECT robot_id, tags FROM robots"
