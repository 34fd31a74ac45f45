"""Settings shared by every environment. Values come from the environment (django-environ)."""
from datetime import timedelta
from pathlib import Path

import environ
from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent.parent
env = environ.Env()
env.read_env(BASE_DIR / ".env", overwrite=False)

# Secrets have no default here: local.py and test.py give sandbox values, production.py refuses to start
# without real ones.
SECRET_KEY = env("DJANGO_SECRET_KEY", default="")
DEBUG = env.bool("DJANGO_DEBUG", default=False)
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["127.0.0.1", "localhost"])

INSTALLED_APPS = [
    "config.apps.OperatorsAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "core",
    "ledger",
    "wallet",
    "payments",
    "reconciliation",
    "notifications",  # outbound webhooks to merchants (README "The buyer's side")
    "storefront",  # the demo shop, a merchant of ours served at /shop/ (README "The buyer's side")
    "payouts",
    "disputes",  # disputes and chargebacks (docs/disputes.md)
    "axes",  # admin login lock-out (README, "Rate limits")
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "core.middleware.RateLimitMiddleware",
    "core.middleware.ApiBodySizeLimitMiddleware",
    # Sessions, the user and messages: Django's own, passed by for /api/ and /webhooks/ (core.middleware).
    "core.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "core.middleware.AuthenticationMiddleware",
    "core.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "axes.middleware.AxesMiddleware",  # last, as django-axes requires
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# Two roles (core/db_roles.py, README "Database roles"): DATABASE_URL is the application's, the role gunicorn
# and Celery connect as (under make: marketplace_app, least privilege); DATABASE_OWNER_URL is what migrations and
# `manage.py db_roles` connect with, and DATABASE_OWNER_ROLE (default: that URL's user) owns the tables.
# Bare manage.py and pytest default to the local superuser for both.
DATABASES = {
    "default": env.db(
        "DATABASE_URL", default="postgres://postgres@127.0.0.1:5432/marketplace"
    )
}
DATABASE_OWNER_URL = env("DATABASE_OWNER_URL", default=env("DATABASE_URL",
                         default="postgres://postgres@127.0.0.1:5432/marketplace"))
DATABASE_OWNER_ROLE = env("DATABASE_OWNER_ROLE", default="")
DATABASES["default"]["ATOMIC_REQUESTS"] = False
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
# Django's PostgreSQL backend, whose pool checks a connection by polling its socket first (core/db_backend).
DATABASES["default"]["ENGINE"] = "core.db_backend"
# psycopg's connection pool, one per process (0 turns it off for persistent connections instead).
# The Celery worker runs a hundred threads that each hand their connection back while they wait
# for the PSP, so a few connections serve them all; a thread that waits longer than the timeout
# for one fails its task, which is retried (the pool, not the database, is what runs out).
DATABASE_POOL_MAX_SIZE = env.int("DATABASE_POOL_MAX_SIZE", default=16)
if DATABASE_POOL_MAX_SIZE:
    DATABASES["default"]["CONN_MAX_AGE"] = 0  # the pool keeps them
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": 1, "max_size": DATABASE_POOL_MAX_SIZE,
        "timeout": env.float("DATABASE_POOL_TIMEOUT_SECONDS", default=10.0),
        "max_idle": 300.0,
    }
else:
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=60)
# Parameters bound by PostgreSQL, and a statement run twice on a connection prepared there (psycopg keeps the
# 100 latest per connection): it is parsed and planned once per connection instead of on every execution, and
# PostgreSQL keeps a generic plan where it costs no more. A prepared statement whose result columns a
# migration changes fails once with "cached plan must not change result type": our statements name their
# columns, and workers restart after migrations. DATABASE_SERVER_SIDE_BINDING=false turns it off.
if env.bool("DATABASE_SERVER_SIDE_BINDING", default=True):
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        server_side_binding=True, prepare_threshold=env.int("DATABASE_PREPARE_THRESHOLD", default=2))
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 12}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "var" / "static"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}

# --- API -------------------------------------------------------------------
REST_FRAMEWORK = {
    # The API-key authentication with the per-IP limit of unauthenticated requests (core/throttling.py).
    "DEFAULT_AUTHENTICATION_CLASSES": ["core.throttling.RateLimitedApiKeyAuthentication"],
    "DEFAULT_THROTTLE_CLASSES": ["core.throttling.ApiRateThrottle"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "core.throttling.api_exception_handler",  # core.errors' handler + Retry-After
    "UNAUTHENTICATED_USER": None,
    # One representation (JSON): no ?format= override, which answered 404 to a junk value.
    "URL_FORMAT_OVERRIDE": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Marketplace payments API",
    "DESCRIPTION": "Checkout, payment orders and sellers. Amounts are integers in the "
    "currency's minor unit; currencies are lowercase ISO 4217 codes.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SERVE_AUTHENTICATION": [],
    "COMPONENT_SPLIT_REQUEST": True,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}
# Bodies above this size are refused with 413 before they are read.
API_MAX_BODY_BYTES = env.int("API_MAX_BODY_BYTES", default=64 * 1024)
# How long an Idempotency-Key is remembered (Stripe keeps them 24 hours).
IDEMPOTENCY_KEY_TTL_HOURS = env.int("IDEMPOTENCY_KEY_TTL_HOURS", default=24)
# An in-progress key older than this is considered abandoned and may be taken over.
IDEMPOTENCY_LOCK_TIMEOUT_SECONDS = env.int("IDEMPOTENCY_LOCK_TIMEOUT_SECONDS", default=60)

# --- Payments ----------------------------------------------------------------
CHECKOUT_MAX_ORDERS = env.int("CHECKOUT_MAX_ORDERS", default=50)
# A checkout whose orders partly failed: "keep" leaves it partially_succeeded (the succeeded orders stand);
# "refund_all" refunds the succeeded orders in full and fails the checkout (payments/services/checkout_outcome.py).
CHECKOUT_ON_PARTIAL_FAILURE = env.str("CHECKOUT_ON_PARTIAL_FAILURE", default="keep")
if CHECKOUT_ON_PARTIAL_FAILURE not in ("keep", "refund_all"):
    raise ImproperlyConfigured(
        f"CHECKOUT_ON_PARTIAL_FAILURE must be keep or refund_all, not {CHECKOUT_ON_PARTIAL_FAILURE!r}")
# Upper bound of one payment order, in minor units (Stripe's own limit for most currencies).
PAYMENT_ORDER_MAX_AMOUNT = env.int("PAYMENT_ORDER_MAX_AMOUNT", default=99_999_999)
# Platform commission in basis points of each order, kept from the seller's credit.
PLATFORM_COMMISSION_BPS = env.int("PLATFORM_COMMISSION_BPS", default=0)
# PSP calls per order before it goes to the dead-letter state (retryable errors only).
PAYMENT_EXECUTE_MAX_ATTEMPTS = env.int("PAYMENT_EXECUTE_MAX_ATTEMPTS", default=6)
# An order or refund nobody has touched for this long past its due time is re-driven by the sweeper.
PAYMENT_STALL_SECONDS = env.float("PAYMENT_STALL_SECONDS", default=30.0)
# After a timeout, how long the janitor waits before asking the PSP; and between checks of pending orders.
PAYMENT_UNKNOWN_CHECK_SECONDS = env.float("PAYMENT_UNKNOWN_CHECK_SECONDS", default=15.0)
PAYMENT_PENDING_CHECK_SECONDS = env.float("PAYMENT_PENDING_CHECK_SECONDS", default=60.0)
SWEEPER_INTERVAL_SECONDS = env.float("SWEEPER_INTERVAL_SECONDS", default=15.0)
JANITOR_INTERVAL_SECONDS = env.float("JANITOR_INTERVAL_SECONDS", default=15.0)
PAYMENT_RETRY_BASE_SECONDS = env.float("PAYMENT_RETRY_BASE_SECONDS", default=2.0)
PAYMENT_RETRY_MAX_SECONDS = env.float("PAYMENT_RETRY_MAX_SECONDS", default=300.0)

# --- Rate limits (core/throttling.py; README "Rate limits") ------------------------------
# Fixed windows counted in Redis: "N/s", "N/m", "N/h", "N/d" or "N/<k>s"; "off" for none.
RATE_LIMIT_ENABLED = env.bool("RATE_LIMIT_ENABLED", default=True)
RATE_LIMIT_API_KEY = env("RATE_LIMIT_API_KEY", default="100/s")  # per API key (Stripe's live-mode default)
RATE_LIMIT_ANONYMOUS = env("RATE_LIMIT_ANONYMOUS", default="60/m")  # per IP: no key or a bad one
RATE_LIMIT_WEBHOOK = env("RATE_LIMIT_WEBHOOK", default="100/s")  # per IP on /webhooks/ (Stripe redelivers a 429)
# How many proxies of our own append to X-Forwarded-For in front of gunicorn; 0: REMOTE_ADDR is the client.
RATE_LIMIT_TRUSTED_PROXIES = env.int("RATE_LIMIT_TRUSTED_PROXIES", default=0)
# After a Redis error, requests pass unlimited (fail open) and Redis is asked again only after this long.
RATE_LIMIT_REDIS_RETRY_SECONDS = env.float("RATE_LIMIT_REDIS_RETRY_SECONDS", default=5.0)
RATE_LIMIT_CACHE = "ratelimit"
CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
    # Not the broker's database (0; tests 5, the benchmarks 6).
    RATE_LIMIT_CACHE: {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": env("RATE_LIMIT_REDIS_URL", default="redis://127.0.0.1:6379/2"),
        "KEY_PREFIX": env("RATE_LIMIT_KEY_PREFIX", default="ratelimit"),
        "OPTIONS": {"socket_connect_timeout": 0.25, "socket_timeout": 0.25},
    },
}

# Admin login (django-axes): locked for a username from an address after AXES_FAILURE_LIMIT failures, until
# the cool-off has passed since the last one (a correct password is refused meanwhile); attempts are rows in
# the database (visible in the admin, `manage.py axes_reset` lifts them), so the lock-out holds without Redis.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env.int("ADMIN_LOGIN_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(seconds=env.float("ADMIN_LOGIN_COOLOFF_SECONDS", default=900.0))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_CLIENT_IP_CALLABLE = "core.throttling.client_address"
AXES_HTTP_RESPONSE_CODE = 429

# --- PSP -----------------------------------------------------------------------
PSP_API_BASE = env("PSP_API_BASE", default="http://127.0.0.1:12111")
PSP_API_KEY = env("PSP_API_KEY", default="")
PSP_TIMEOUT_SECONDS = env.float("PSP_TIMEOUT_SECONDS", default=10.0)
PSP_WEBHOOK_SECRET = env("PSP_WEBHOOK_SECRET", default="")
PSP_WEBHOOK_TOLERANCE_SECONDS = env.int("PSP_WEBHOOK_TOLERANCE_SECONDS", default=300)
# Stripe's search is eventually consistent ("typically within a minute"): a search made this long after
# a call is trusted to show what the call created. Only then does an order whose key the PSP spent
# (a saved 500) get a new key.
PSP_SEARCH_CONSISTENCY_SECONDS = env.float("PSP_SEARCH_CONSISTENCY_SECONDS", default=300.0)

# --- Payouts (money out; README "Money out") ---------------------------------------
PAYOUTS_PSP_ADAPTER = env("PAYOUTS_PSP_ADAPTER", default="payouts.psp.stripe_connect.StripeConnectAdapter")
# The Connect webhook endpoint's own signing secret (the connected accounts' events: payout.paid, ...).
PSP_CONNECT_WEBHOOK_SECRET = env("PSP_CONNECT_WEBHOOK_SECRET", default="")
# A capture's seller share can be paid out this many days after it (pending until then).
PAYOUT_HOLD_DAYS = env.float("PAYOUT_HOLD_DAYS", default=2)
# Rolling reserve: this share of each capture (basis points) stays reserved for PAYOUT_RESERVE_DAYS.
PAYOUT_RESERVE_BPS = env.int("PAYOUT_RESERVE_BPS", default=0)
PAYOUT_RESERVE_DAYS = env.float("PAYOUT_RESERVE_DAYS", default=0)
if not 0 <= PAYOUT_RESERVE_BPS <= 10_000 or PAYOUT_HOLD_DAYS < 0 or PAYOUT_RESERVE_DAYS < 0:
    raise ImproperlyConfigured("PAYOUT_RESERVE_BPS must be 0..10000; PAYOUT_HOLD_DAYS, PAYOUT_RESERVE_DAYS >= 0")
# Checks ``audit_money`` runs after its own (payments does not import the apps that add them).
MONEY_AUDIT_EXTRA_CHECKS = ["payouts.audit.payouts_audit", "disputes.audit.disputes_audit"]
# The smallest payout, minor units (PAYOUT_MINIMUMS: per currency, e.g. PAYOUT_MINIMUMS=jpy=100,eur=500).
PAYOUT_MINIMUM = env.int("PAYOUT_MINIMUM", default=100)
PAYOUT_MINIMUMS = {k.lower(): int(v) for k, v in env.dict("PAYOUT_MINIMUMS", default={}).items()}
# Rounds of PSP calls per payout before it goes to the dead letter (retryable errors only).
PAYOUT_EXECUTE_MAX_ATTEMPTS = env.int("PAYOUT_EXECUTE_MAX_ATTEMPTS", default=6)
# How often the recovery round asks the PSP about a payout in transit whose payout.paid/failed has not come.
PAYOUT_IN_TRANSIT_CHECK_SECONDS = env.float("PAYOUT_IN_TRANSIT_CHECK_SECONDS", default=3600.0)
# A paid payout the bank may still send back (Stripe then reports it failed): the recovery round asks the PSP
# about it every PAYOUT_RETURN_CHECK_SECONDS for PAYOUT_RETURN_WINDOW_DAYS after it was paid, so a return whose
# webhook is lost is found by us, not only by reconciliation.
PAYOUT_RETURN_CHECK_SECONDS = env.float("PAYOUT_RETURN_CHECK_SECONDS", default=86400.0)
PAYOUT_RETURN_WINDOW_DAYS = env.float("PAYOUT_RETURN_WINDOW_DAYS", default=10.0)
PAYOUTS_RECOVERY_INTERVAL_SECONDS = env.float("PAYOUTS_RECOVERY_INTERVAL_SECONDS", default=15.0)
# A seller's balance below zero this many days (a refund or lost dispute after its money was paid out, not
# netted off since) is written off by the platform: expenses:seller_losses, once per negative episode (the
# daily task payouts.write_off_negative_balances). Unset: only an operator writes one off (admin, with a reason).
NEGATIVE_BALANCE_WRITE_OFF_DAYS = env.float("NEGATIVE_BALANCE_WRITE_OFF_DAYS", default=None)
if NEGATIVE_BALANCE_WRITE_OFF_DAYS is not None and NEGATIVE_BALANCE_WRITE_OFF_DAYS < 0:
    raise ImproperlyConfigured("NEGATIVE_BALANCE_WRITE_OFF_DAYS must be >= 0 (or unset: never automatically)")

# --- Disputes and chargebacks (docs/disputes.md) -------------------------------------
# Who bears the PSP's dispute fee: "seller" (taken from their payable with the disputed amount) or
# "platform" (expenses:dispute_fees). Fixed on each dispute when its money is booked.
DISPUTE_FEE_PAYER = env("DISPUTE_FEE_PAYER", default="seller")
if DISPUTE_FEE_PAYER not in ("seller", "platform"):
    raise ImproperlyConfigured("DISPUTE_FEE_PAYER must be 'seller' or 'platform'")
# Handlers of the PSP's webhooks payments does not know, by event type prefix: a dotted path to
# ``handler(*, event: dict, actor: str) -> str`` (a WebhookEvent.Status). Payments imports none of them.
PSP_WEBHOOK_HANDLERS = {"charge.dispute.": "disputes.webhooks.dispute_webhook_apply"}

# --- Celery ----------------------------------------------------------------------
CELERY_BROKER_URL = env("CELERY_BROKER_URL", default="redis://127.0.0.1:6379/0")
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_DEFAULT_QUEUE = env("CELERY_TASK_DEFAULT_QUEUE", default="payments")
CELERY_TASK_ACKS_LATE = True  # a task whose worker dies is delivered again
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# A PSP call is I/O: threads keep many of them in flight in one process (see README, "Speed").
CELERY_WORKER_POOL = env("CELERY_WORKER_POOL", default="threads")
CELERY_WORKER_CONCURRENCY = env.int("CELERY_WORKER_CONCURRENCY", default=100)
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT", default=600)
}
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = "UTC"
CELERY_BEAT_SCHEDULE = {
    "idempotency-keys-expire": {"task": "core.tasks.idempotency_keys_expire", "schedule": 3600.0},
    "payments-sweeper": {"task": "payments.sweeper", "schedule": SWEEPER_INTERVAL_SECONDS},
    "payments-janitor": {"task": "payments.janitor", "schedule": JANITOR_INTERVAL_SECONDS},
}

# --- Logging: one line per event, key=value, never a card number. ------------------
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "kv": {"format": "ts=%(asctime)s level=%(levelname)s logger=%(name)s %(message)s"}
    },
    # A refused admin page (PermissionDenied, 403) is one WARNING line, without a traceback.
    "filters": {"permission_denied_one_line": {"()": "core.log_filters.PermissionDeniedOneLine"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "kv"}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", default="INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"},
                "django.request": {"filters": ["permission_denied_one_line"]}},
}

# --- Reconciliation -----------------------------------------------------------------
# Where the nightly job looks for new PSP reports and bank statements (a file is imported once per content).
RECONCILIATION_INBOX_DIR = env.path("RECONCILIATION_INBOX_DIR", default=BASE_DIR / "var" / "settlement-inbox")
# A succeeded order still unsettled this long after the end of the reconciled day is a missing_in_settlement break
# (orders older than the lookback are left alone).
RECONCILIATION_MISSING_CUTOFF_HOURS = env.int("RECONCILIATION_MISSING_CUTOFF_HOURS", default=48)
RECONCILIATION_MISSING_LOOKBACK_DAYS = env.int("RECONCILIATION_MISSING_LOOKBACK_DAYS", default=30)
# An order completed more than this before its settlement batch closed belonged to an earlier batch: timing.
RECONCILIATION_TIMING_WINDOW_HOURS = env.int("RECONCILIATION_TIMING_WINDOW_HOURS", default=24)
# How long after a payout its bank credit may be booked, for matching by amount when the payout id is absent.
RECONCILIATION_PAYOUT_WINDOW_DAYS = env.int("RECONCILIATION_PAYOUT_WINDOW_DAYS", default=5)
# A run may send reads of what was committed before it to a second connection, beside its own statements (a second
# core; reconciliation.matching.aside). Off: every statement on the run's connection, one after another.
RECONCILIATION_READS_ASIDE = env.bool("RECONCILIATION_READS_ASIDE", default=True)
# A file's lines are staged and inserted sorted by PSP reference once the lines' reference index is larger than
# this many bytes; below it a direct COPY, beside the parse, is faster. Unset: PostgreSQL's shared_buffers
# (an index that fits stays cached; one that does not costs a page miss per line). docs/reconciliation-speed.md.
RECONCILIATION_IMPORT_SORTED_ABOVE_BYTES = env.int("RECONCILIATION_IMPORT_SORTED_ABOVE_BYTES", default=None)
# Those lines staged by a second connection while the import's inserts what has landed, a slice at a time (a second
# core; reconciliation.services.staging). Off: staged on the import's connection, inserted once all are parsed.
RECONCILIATION_IMPORT_STAGED_ASIDE = env.bool("RECONCILIATION_IMPORT_STAGED_ASIDE", default=True)
CELERY_BEAT_SCHEDULE["reconciliation-nightly"] = {
    "task": "reconciliation.nightly",
    "schedule": crontab(hour=env.int("RECONCILIATION_NIGHTLY_HOUR", default=3), minute=0),
}
# Money out (payouts/tasks.py): the daily payout run, and the recovery round of unfinished payouts.
CELERY_BEAT_SCHEDULE["payouts-daily"] = {
    "task": "payouts.run_daily",
    "schedule": crontab(hour=env.int("PAYOUTS_RUN_HOUR", default=6), minute=0),
}
CELERY_BEAT_SCHEDULE["payouts-recover"] = {"task": "payouts.recover", "schedule": PAYOUTS_RECOVERY_INTERVAL_SECONDS}
CELERY_BEAT_SCHEDULE["payouts-write-off-negative-balances"] = {
    "task": "payouts.write_off_negative_balances",
    "schedule": crontab(hour=env.int("PAYOUTS_RUN_HOUR", default=6), minute=30),
}
# Disputes (disputes/tasks.py): dispute webhooks left unfinished in payments' inbox are run again.
DISPUTES_RECOVERY_INTERVAL_SECONDS = env.float("DISPUTES_RECOVERY_INTERVAL_SECONDS", default=60.0)
# A dispute whose charge we did not know yet (it came before our order held the charge's reference) is tried
# again by that round for this many days, then left to an operator.
DISPUTES_UNKNOWN_CHARGE_RETRY_DAYS = env.float("DISPUTES_UNKNOWN_CHARGE_RETRY_DAYS", default=7.0)
CELERY_BEAT_SCHEDULE["disputes-recover"] = {"task": "disputes.recover", "schedule": DISPUTES_RECOVERY_INTERVAL_SECONDS}

# --- Buyer side: 3-D Secure, hosted payment page (README "The buyer's side") -----------------
# Our site's address as buyers reach it (e.g. https://pay.example.com), for the PSP's return URL after
# 3-D Secure; empty: taken from the request that created the checkout.
PAYMENTS_PUBLIC_URL = env("PAYMENTS_PUBLIC_URL", default="")
# A 3-D Secure challenge the buyer has not answered after this long is cancelled at the PSP by the janitor,
# and its order fails with authentication_expired.
PAYMENT_ACTION_EXPIRY_SECONDS = env.float("PAYMENT_ACTION_EXPIRY_SECONDS", default=900.0)
# A hosted payment page (checkout session) not paid within this long expires: nothing can be charged from it.
CHECKOUT_SESSION_EXPIRY_SECONDS = env.float("CHECKOUT_SESSION_EXPIRY_SECONDS", default=86400.0)
# The PSP's browser side: the publishable key (not a secret) and the card field's library, loaded by the page.
PSP_PUBLISHABLE_KEY = env("PSP_PUBLISHABLE_KEY", default="pk_test_sandbox")
# The PSP as the buyer's browser reaches it (empty: PSP_API_BASE), and its library (empty: the sandbox's, there).
PSP_PUBLIC_URL = env("PSP_PUBLIC_URL", default="")
PSP_JS_URL = env("PSP_JS_URL", default="")
# Outbound webhooks (notifications/): payments' outbox is relayed every MERCHANT_EVENTS_RELAY_SECONDS; each
# delivery is tried with exponential backoff (base, cap) up to NOTIFICATIONS_MAX_ATTEMPTS (about four days).
MERCHANT_EVENTS_RELAY_SECONDS = env.float("MERCHANT_EVENTS_RELAY_SECONDS", default=1.0)
NOTIFICATIONS_TIMEOUT_SECONDS = env.float("NOTIFICATIONS_TIMEOUT_SECONDS", default=10.0)
# A merchant's endpoint on a loopback, private or link-local address is refused (SSRF), at registration and
# again at each delivery (DNS may change); local development and the tests post to 127.0.0.1.
NOTIFICATIONS_ALLOW_PRIVATE_DESTINATIONS = env.bool("NOTIFICATIONS_ALLOW_PRIVATE_DESTINATIONS", default=False)
NOTIFICATIONS_RETRY_BASE_SECONDS = env.float("NOTIFICATIONS_RETRY_BASE_SECONDS", default=30.0)
NOTIFICATIONS_RETRY_MAX_SECONDS = env.float("NOTIFICATIONS_RETRY_MAX_SECONDS", default=6 * 3600.0)
NOTIFICATIONS_MAX_ATTEMPTS = env.int("NOTIFICATIONS_MAX_ATTEMPTS", default=20)
NOTIFICATIONS_FAILING_AFTER = env.int("NOTIFICATIONS_FAILING_AFTER", default=5)  # failures in a row: "failing"
NOTIFICATIONS_SWEEP_GRACE_SECONDS = env.float("NOTIFICATIONS_SWEEP_GRACE_SECONDS", default=120.0)
CELERY_BEAT_SCHEDULE["payments-merchant-events-relay"] = {
    "task": "payments.merchant_events_relay", "schedule": MERCHANT_EVENTS_RELAY_SECONDS}
CELERY_BEAT_SCHEDULE["notifications-sweeper"] = {"task": "notifications.sweeper", "schedule": 60.0}
