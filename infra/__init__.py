"""The platform under the apps: what the project adds to or replaces in Django, Celery,
kombu, redbeat and PostgreSQL's driver. Imports no app and not the wiring (ze_tracking)."""
