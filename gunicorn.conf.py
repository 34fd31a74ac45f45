"""gunicorn's request limits, explicit. Read by gunicorn when started from the repository root
(its default ``--config ./gunicorn.conf.py``); flags on the command line (the Procfile's bind,
workers...) still win.

gunicorn refuses a request over these limits itself, before Django sees it, with a hard-coded
HTML page (414 for the request line, 431 for the headers; gunicorn has no hook for its body).
So in production a proxy with lower limits fronts it and answers those in the API's error shape
(README, "Errors gunicorn answers itself"): behind it, these limits are a second line only.
"""
import os


def _int(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


# The request line (method, path, query string). gunicorn's default; at most 8190.
limit_request_line = _int("GUNICORN_LIMIT_REQUEST_LINE", 4094)
# How many header fields. gunicorn's default; at most 32768. Behind the proxy below, set it to 4100:
# its 16 KB of header buffers can hold that many tiny headers, and the proxy should be the one refusing.
limit_request_fields = _int("GUNICORN_LIMIT_REQUEST_FIELDS", 100)
# One header field's size. gunicorn's default.
limit_request_field_size = _int("GUNICORN_LIMIT_REQUEST_FIELD_SIZE", 8190)


def post_worker_init(worker) -> None:
    """Once a worker has loaded the application: import every view (Django does so on the first request),
    then move everything alive into the GC's permanent generation (``gc.freeze``). A full collection then
    walks only what requests made since, a few thousand objects instead of ~140,000: in-process (bench/
    checkout_cpu.py) one full collection per ~3,000 checkouts paused a worker 30-320 ms (quiet to loaded
    machine); frozen, none happened. The objects frozen are the code and settings, which live as long as
    the worker anyway."""
    import gc

    from django.urls import get_resolver

    get_resolver().url_patterns  # noqa: B018  (imports the URLconf, hence every view, serializer and service)
    gc.collect()
    gc.freeze()
