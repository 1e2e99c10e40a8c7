"""Structured logs with request ids, metrics in CloudWatch's embedded format, Sentry."""
