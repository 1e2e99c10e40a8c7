from __future__ import annotations

from django.apps import AppConfig
from django.core import checks


class InfraConfig(AppConfig):
    """The platform as a Django app: no models, only its system checks."""

    name = "infra"

    def ready(self) -> None:
        from infra.queue.checks import visibility_timeout_check

        checks.register(visibility_timeout_check)
