"""Robots over MQTT: the broker's accounts from the robots' tokens, and the service's subscriber that stores what
robots publish and answers each message after its commit."""
