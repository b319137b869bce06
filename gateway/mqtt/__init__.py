"""MQTT: the outbox publisher, the users' passwords and the broker's configuration (ACL, listeners)."""
