"""Celery application: settings come from Django's, under the CELERY_ prefix."""
import os
from collections.abc import Iterator, Mapping
from functools import cached_property

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")
# Django's system checks run in CI, in `manage.py migrate` and `check --deploy` before a release, and gunicorn
# does not run them; Celery's Django fixup would run them again in every worker at every start (about 0.2 s of
# CPU, paid again after each restart). CELERY_SKIP_CHECKS= (empty) runs them.
os.environ.setdefault("CELERY_SKIP_CHECKS", "1")


class DjangoCelerySettings(Mapping):
    """Django's ``CELERY_*`` settings, read once, when Celery first needs its configuration.

    Celery looks a setting up under several spellings on every publish (seven settings per task sent); on
    Django's lazy settings object each miss is an AttributeError raised and caught: a fifth of a publish's
    CPU. A dict answers the same misses for nothing. ``app.conf.x = ...`` still overrides, as before. ``frozen``:
    its values never change once read (``core.broker`` keeps what it read from the configuration on that)."""

    frozen = True

    @cached_property
    def _values(self) -> dict:
        from django.conf import settings

        return {name: getattr(settings, name) for name in dir(settings) if name.startswith("CELERY_")}

    def __getitem__(self, name: str):
        return self._values[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)


app = Celery("marketplace")
app.config_from_object(DjangoCelerySettings(), namespace="CELERY")
app.autodiscover_tasks()
