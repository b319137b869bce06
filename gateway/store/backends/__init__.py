"""The store's backends: SQLite (one machine) and PostgreSQL (several gateways), and what both offer the SQL."""
