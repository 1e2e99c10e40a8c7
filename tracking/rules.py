"""The tracking app's rules, typed: batch and payload limits, the accepted device-time window,
partitions and retention, the position filter. Their values and what each means are in
ze_tracking/settings/tracking.py (`TRACKING`, set from TRACKING_* environment variables); the
code reads them here, as `tracking_rules().max_batch_pings`.

The rules are built once per process and built again when a test overrides the setting
(Django's `setting_changed`). A misspelt, missing or invalid rule is a system check error
(`tracking.E001`): `manage.py check` and the commands that run the checks first (migrate,
run before every release; runserver) stop with it, and any other process raises the same
message as ImproperlyConfigured at its first read of the rules.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping, Sequence
from typing import Any

from django.apps import AppConfig
from django.conf import settings
from django.core import checks
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.dispatch import receiver


@dataclasses.dataclass(frozen=True, kw_only=True)
class TrackingRules:
    """`settings.TRACKING`, one field per key (the key in lower case). Every value is
    positive; `_s` is seconds, `_ms` milliseconds, `_m` metres, `_mps` metres per second."""

    max_batch_pings: int
    max_future_s: int
    max_age_s: int
    max_speed_mps: float
    default_speed_mps: float
    max_task_payload_bytes: int
    max_attributes_bytes: int
    max_attributes_depth: int
    partition_days_ahead: int
    partition_lock_timeout_ms: int
    partition_ddl_attempts: int
    retention_days: int
    stale_after_s: int
    plausibility_gap_s: int
    plausibility_gap_speed_mps: float
    plausibility_run: int
    plausibility_max_skip: int
    plausibility_max_accuracy_m: float
    plausibility_context_pings: int
    plausibility_history_s: int
    plausibility_good_accuracy_m: float
    event_identity_keep_s: int


def rules_from(raw: Mapping[str, Any]) -> TrackingRules:
    """The typed rules of a `TRACKING` dict, or ImproperlyConfigured naming every key that is
    unknown, missing, of the wrong type or not positive."""
    fields = {field.name.upper(): field for field in dataclasses.fields(TrackingRules)}
    problems = [f"unknown rule {key!r}" for key in raw if key not in fields]
    problems += [f"missing rule {key!r}" for key in fields if key not in raw]
    values: dict[str, Any] = {}
    for key, field in fields.items():
        if key not in raw:
            continue
        value, whole = raw[key], field.type == "int"
        if isinstance(value, bool) or not isinstance(value, int | float) or (whole and isinstance(value, float)):
            problems.append(f"{key} must be {'a whole number' if whole else 'a number'}, not {value!r}")
        elif value <= 0:
            problems.append(f"{key} must be positive, not {value!r}")
        else:
            values[field.name] = value if whole else float(value)
    if problems:
        raise ImproperlyConfigured(f"settings.TRACKING: {'; '.join(problems)}.")
    return TrackingRules(**values)


@functools.cache
def tracking_rules() -> TrackingRules:
    """The rules of `settings.TRACKING`, as they stand."""
    return rules_from(settings.TRACKING)


@receiver(setting_changed, dispatch_uid="tracking.rules.setting_changed")
def tracking_rules_forget(*, setting: str, **kwargs: Any) -> None:
    if setting == "TRACKING":
        tracking_rules.cache_clear()


def tracking_rules_check(app_configs: Sequence[AppConfig] | None = None, **kwargs: Any) -> list[checks.CheckMessage]:
    try:
        rules_from(settings.TRACKING)
    except ImproperlyConfigured as error:
        return [
            checks.Error(
                str(error),
                hint="Set the TRACKING_* environment variable, or fix TRACKING in ze_tracking/settings/tracking.py.",
                id="tracking.E001",
            )
        ]
    return []
