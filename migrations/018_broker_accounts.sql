-- Robots over MQTT (issue 22): each robot token's hash in the broker's own password-file form (Mosquitto's
-- PBKDF2-SHA512, "$7$..."), computed when the token is issued, the only moment its clear text is known. Tokens
-- issued before this migration have none: a robot rotates its token to connect over MQTT.
ALTER TABLE credentials ADD COLUMN broker_hash text;
