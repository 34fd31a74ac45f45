"""Production: refuses to start without real secrets; HTTPS only, behind a TLS-terminating proxy.

Every value comes from the environment. A missing or known-default secret stops the process
at import with a message naming the variable, so nothing ever runs signed with a public key.
"""
from django.core.exceptions import ImproperlyConfigured

from .base import *  # noqa: F401,F403
from .base import env

# Values published in this repository (the sandbox's, the local settings'): never accepted here.
PUBLIC_DEFAULTS = {"dev-only-insecure-key", "test-only", "sk_test_sandbox", "whsec_sandbox_secret", "pk_test_sandbox"}


def required(name: str) -> str:
    value = env(name, default="")
    if not value:
        raise ImproperlyConfigured(f"{name} must be set in production (config.settings.production).")
    if value in PUBLIC_DEFAULTS:
        raise ImproperlyConfigured(f"{name} is a public default from this repository; set a secret of your own.")
    return value


DEBUG = False
SECRET_KEY = required("DJANGO_SECRET_KEY")
required("DATABASE_URL")  # read by base.py; no default database in production
PSP_API_KEY = required("PSP_API_KEY")
PSP_WEBHOOK_SECRET = required("PSP_WEBHOOK_SECRET")
# Not a secret (buyers' browsers read it), but the sandbox's would tokenise real cards against nothing.
PSP_PUBLISHABLE_KEY = required("PSP_PUBLISHABLE_KEY")

# HTTPS: the proxy terminates TLS and says so in X-Forwarded-Proto.
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=True)
SECURE_REDIRECT_EXEMPT = [r"^health$"]  # the load balancer's probe speaks plain HTTP
SECURE_HSTS_SECONDS = env.int("DJANGO_SECURE_HSTS_SECONDS", default=31_536_000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS", default=True)
SECURE_HSTS_PRELOAD = env.bool("DJANGO_SECURE_HSTS_PRELOAD", default=True)
SESSION_COOKIE_SECURE = env.bool("DJANGO_SECURE_COOKIES", default=True)
CSRF_COOKIE_SECURE = env.bool("DJANGO_SECURE_COOKIES", default=True)
# The admin's origin(s) behind the proxy, e.g. https://pay.example.com (CSRF checks the Origin header).
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])
