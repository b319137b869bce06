"""The store (SQLite): schema migrations, restrictions, calls, tickets, the MQTT outbox, hand-offs and pushes."""
