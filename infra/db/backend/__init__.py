"""The database backend (settings.DATABASES' ENGINE): PostGIS's, with a cheaper health check."""
