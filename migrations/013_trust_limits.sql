-- Trust limits (issue 20). A key limited to part of the fleet may not hold the admin scope: admin routes change
-- the whole fleet (keys, robots, rules, webhooks), so a limited admin key could reach past its own limit.
UPDATE credentials SET scopes = array_remove(scopes, 'admin')
WHERE kind = 'key' AND 'admin' = ANY (scopes) AND (robot_ids IS NOT NULL OR fleet_tag IS NOT NULL);
ALTER TABLE credentials ADD CONSTRAINT limited_keys_hold_no_admin
    CHECK (NOT ('admin' = ANY (scopes) AND (robot_ids IS NOT NULL OR fleet_tag IS NOT NULL)));

-- Acknowledging an alert is a write: it takes the new `operate` scope, which `read` no longer implies. Admin keys
-- could already do anything, so they keep acknowledging.
UPDATE credentials SET scopes = scopes || '{operate}'::text[]
WHERE kind = 'key' AND 'admin' = ANY (scopes) AND NOT 'operate' = ANY (scopes);

-- Every process drops its cached principals.
UPDATE credential_epoch SET epoch = epoch + 1;
