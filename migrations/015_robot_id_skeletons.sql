-- Look-alike robot ids (issue 20, N14): each robot's UTS #39 skeleton, so that provisioning can refuse an id that
-- looks like another robot's. Computed by the API (ICU), so NULL until then: robots registered without
-- provisioning (authentication off) and those from before this migration get theirs at the next provisioning.
ALTER TABLE robots ADD COLUMN id_skeleton text;
CREATE INDEX robots_id_skeleton ON robots (id_skeleton);
CREATE INDEX robots_without_skeleton ON robots (robot_key) WHERE id_skeleton IS NULL;
