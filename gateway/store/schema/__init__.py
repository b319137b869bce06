"""The store's versioned schema, one migration list per backend with shared version numbers."""
