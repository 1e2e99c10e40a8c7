"""The tracking app's rules (tracking/rules.py): typed values read from settings.TRACKING,
following an overridden setting, and a misspelt, missing or invalid rule refused by the
system check before any process serves."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from django.core import checks

from tests.support import ROOT
from tracking.rules import TrackingRules, tracking_rules


def tracking_errors() -> list[checks.CheckMessage]:
    return [message for message in checks.run_checks() if message.id.startswith("tracking.")]


def test_rules_expose_the_settings_as_typed_values(settings):
    rules = tracking_rules()
    assert isinstance(rules, TrackingRules)
    assert rules.max_batch_pings == settings.TRACKING["MAX_BATCH_PINGS"]
    assert type(rules.max_batch_pings) is int
    assert rules.max_speed_mps == settings.TRACKING["MAX_SPEED_MPS"]
    assert type(rules.max_speed_mps) is float
    assert rules.event_identity_keep_s == settings.TRACKING["EVENT_IDENTITY_KEEP_S"]


def test_rules_follow_an_overridden_setting(settings):
    settings.TRACKING = {**settings.TRACKING, "MAX_BATCH_PINGS": 3}
    assert tracking_rules().max_batch_pings == 3
    settings.TRACKING = {**settings.TRACKING, "MAX_BATCH_PINGS": 4}
    assert tracking_rules().max_batch_pings == 4


def test_a_whole_number_is_accepted_for_a_decimal_rule(settings):
    settings.TRACKING = {**settings.TRACKING, "MAX_SPEED_MPS": 40}
    assert tracking_rules().max_speed_mps == 40.0
    assert type(tracking_rules().max_speed_mps) is float


def test_the_default_rules_pass_the_system_check():
    assert tracking_errors() == []


def test_a_misspelt_rule_is_a_system_check_error(settings):
    rules = {**settings.TRACKING, "MAX_BATCH_PING": 3}
    del rules["MAX_BATCH_PINGS"]
    settings.TRACKING = rules
    errors = tracking_errors()
    assert [error.id for error in errors] == ["tracking.E001"]
    assert "MAX_BATCH_PING" in errors[0].msg
    assert "MAX_BATCH_PINGS" in errors[0].msg


def test_a_rule_of_the_wrong_type_is_a_system_check_error(settings):
    settings.TRACKING = {**settings.TRACKING, "PARTITION_DDL_ATTEMPTS": "five"}
    errors = tracking_errors()
    assert [error.id for error in errors] == ["tracking.E001"]
    assert "PARTITION_DDL_ATTEMPTS" in errors[0].msg


def test_a_rule_that_is_not_positive_is_a_system_check_error(settings):
    settings.TRACKING = {**settings.TRACKING, "MAX_SPEED_MPS": 0.0}
    errors = tracking_errors()
    assert [error.id for error in errors] == ["tracking.E001"]
    assert "MAX_SPEED_MPS" in errors[0].msg


def test_a_boolean_is_not_a_number_of_seconds(settings):
    settings.TRACKING = {**settings.TRACKING, "STALE_AFTER_S": True}
    assert [error.id for error in tracking_errors()] == ["tracking.E001"]


@pytest.mark.processes
def test_a_bad_rule_in_the_environment_stops_manage_py_check():
    """The environment sets the rules: a value the settings parse but the rules refuse
    stops `manage.py check` (and migrate, run before every release) with the rule's name."""
    env = {**os.environ, "TRACKING_PLAUSIBILITY_RUN": "0"}
    started = subprocess.run([sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True)
    assert started.returncode != 0
    assert "(tracking.E001) settings.TRACKING: PLAUSIBILITY_RUN must be positive, not 0." in started.stderr
