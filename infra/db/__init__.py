"""The database: PostGIS backend, compiled one-row reads, failure classification."""
