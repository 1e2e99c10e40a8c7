"""The settings, one module per concern, read from environment variables (12-factor).

DJANGO_SETTINGS_MODULE is this package; each module imports what it needs from the ones
before it, and this one composes them in that order.
"""

from __future__ import annotations

from ze_tracking.settings.api import *  # noqa: F403
from ze_tracking.settings.cache import *  # noqa: F403
from ze_tracking.settings.celery import *  # noqa: F403
from ze_tracking.settings.core import *  # noqa: F403
from ze_tracking.settings.database import *  # noqa: F403
from ze_tracking.settings.notifications import *  # noqa: F403
from ze_tracking.settings.observability import *  # noqa: F403
from ze_tracking.settings.security import *  # noqa: F403
from ze_tracking.settings.tracking import *  # noqa: F403
