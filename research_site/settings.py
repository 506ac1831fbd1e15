"""Settings for Research Engine, read from the environment.

Every setting has an embedded default that needs nothing installed: a SQLite file and
the in-memory channel layer. Set ``DATABASE_URL`` and ``REDIS_URL`` to run on PostgreSQL
and share the live streams between several daphne processes. The README lists every
variable.
"""

from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()

DEBUG = env.bool("DJANGO_DEBUG", default=True)

# A development key is only acceptable while DEBUG is on; production must bring its own.
_DEV_SECRET_KEY = "dev-insecure-research-engine-key-change-me-in-production-0123456789"  # noqa: S105
SECRET_KEY = env.str("DJANGO_SECRET_KEY", default=_DEV_SECRET_KEY if DEBUG else "")
if not SECRET_KEY:
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured("DJANGO_SECRET_KEY must be set when DJANGO_DEBUG=0.")

ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]", "testserver"])

# How many reverse proxies in front of us append to X-Forwarded-For. 0 trusts none of
# it: the client address is the socket peer. With 1, the last entry is the client as
# seen by our own proxy, and so on. Used by throttling and logs.
TRUSTED_PROXY_COUNT = env.int("TRUSTED_PROXY_COUNT", default=0)

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "corsheaders",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "channels",
    "experiments",
    "agents",
    "realtime",
    "dashboard",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "corsheaders.middleware.CorsMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "research_site.urls"

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

ASGI_APPLICATION = "research_site.asgi.application"

# Database ------------------------------------------------------------------------------

DATABASES = {"default": env.db_url("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
_db = DATABASES["default"]
if _db["ENGINE"] == "django.db.backends.sqlite3":
    # IMMEDIATE takes the write lock when a transaction begins, so two writers queue
    # instead of failing with "database is locked" halfway through; WAL lets readers
    # (sockets replaying events) run beside the writer.
    _db.setdefault("OPTIONS", {}).update(
        {
            "transaction_mode": "IMMEDIATE",
            "timeout": 30,
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    )
elif _db["ENGINE"] in ("django.db.backends.postgresql", "django.db.backends.postgis"):
    # Under ASGI every request runs in a fresh thread, so persistent per-thread
    # connections would leak; psycopg's pool hands connections across threads instead.
    _db["CONN_MAX_AGE"] = 0
    _db.setdefault("OPTIONS", {})["pool"] = {
        "min_size": env.int("DB_POOL_MIN", default=2),
        "max_size": env.int("DB_POOL_MAX", default=20),
        "timeout": 10,
    }
    if env.bool("DB_SERVER_SIDE_BINDING", default=False):
        _db["OPTIONS"]["server_side_binding"] = True
    if "TEST" not in _db:
        # Several test runs may share one server (parallel sessions): name yours.
        _db["TEST"] = {"NAME": env.str("DATABASE_TEST_NAME", default="test_research_engine")}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Redis: channel layer and shared cache ------------------------------------------------

REDIS_URL = env.str("REDIS_URL", default="")

if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": env.str("CHANNEL_LAYER_BACKEND", default="channels_redis.pubsub.RedisPubSubChannelLayer"),
            "CONFIG": {
                # One pool per event loop. Each daphne process publishes from request
                # threads and listens through one subscriber connection, so 50 leaves
                # room for bursts of concurrent requests without queueing on the pool.
                "hosts": [{"address": REDIS_URL, "max_connections": 50}],
                "prefix": env.str("CHANNEL_LAYER_PREFIX", default="research"),
            },
        }
    }
    if "pubsub" not in CHANNEL_LAYERS["default"]["BACKEND"]:
        # RedisChannelLayer (lists per channel): the defaults (capacity 100, expiry
        # 60 s) drop messages silently in a burst. Each process is one member per group
        # (see realtime/hub.py), so a channel receives every event of the process; a
        # capacity of 10,000 absorbs ten seconds at 1,000 events/s, and what is still
        # dropped is repaired from the event store.
        CHANNEL_LAYERS["default"]["CONFIG"].update({"capacity": 10_000, "expiry": 30, "group_expiry": 86_400})
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "research",
        },
        # Rendered results and metric bodies, keyed by the experiment's seq (see
        # experiments/response_cache.py); shared by every process.
        "responses": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "research-responses",
            "TIMEOUT": 600,
        },
    }
else:
    CHANNEL_LAYERS = {
        "default": {
            # Channels' own in-memory layer sweeps every channel and group on every
            # receive; ours sweeps at most once a second. Capacity is per channel: the
            # process hub's channel takes every event of the process.
            "BACKEND": "realtime.layers.InMemoryChannelLayer",
            "CONFIG": {"capacity": 10_000, "expiry": 60},
        }
    }
    # One process without Redis: the in-memory channel layer already ties the app to a
    # single process, so a process-local cache is shared by everything that runs.
    CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
        # Bodies can be megabytes: keep a few dozen at most, for ten minutes.
        "responses": {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "LOCATION": "responses",
            "TIMEOUT": 600,
            "OPTIONS": {"MAX_ENTRIES": 48},
        },
    }

# Auth ------------------------------------------------------------------------------------

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "dashboard:experiment-list"
LOGOUT_REDIRECT_URL = "login"

# Internationalisation -----------------------------------------------------------------

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# Static files ----------------------------------------------------------------------------

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
# Serve straight from the finders when nothing was collected (make run, tests).
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG

# Request bodies --------------------------------------------------------------------------

# Report and API bodies are at most 1 MiB; the ASGI body limit answers 413 beyond
# MAX_REQUEST_BODY_BYTES before Django reads anything (research_site/asgi.py).
DATA_UPLOAD_MAX_MEMORY_SIZE = 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 1024 * 1024
MAX_REQUEST_BODY_BYTES = env.int("MAX_REQUEST_BODY_BYTES", default=2 * 1024 * 1024)
IMPORT_MAX_BYTES = 1024 * 1024

# CORS and CSRF ---------------------------------------------------------------------------

CORS_ALLOWED_ORIGINS = env.list("CORS_ALLOWED_ORIGINS", default=[])
CORS_ALLOW_CREDENTIALS = True
CORS_EXPOSE_HEADERS = ["Retry-After", "Content-Disposition"]
CORS_ALLOW_HEADERS = (
    "accept",
    "authorization",
    "content-type",
    "idempotency-key",
    "origin",
    "x-csrftoken",
    "x-requested-with",
)
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=CORS_ALLOWED_ORIGINS)

# Security: production-safe when DEBUG is off ---------------------------------------------

SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = False  # the dashboard's fetch() reads it to send X-CSRFToken
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
if not DEBUG:
    SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=True)
    CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=True)
    if env.bool("DJANGO_BEHIND_TLS_PROXY", default=True):
        # TLS ends at the reverse proxy, which tells us the scheme it received.
        SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

CSRF_FAILURE_VIEW = "experiments.api.errors.csrf_failure"

SILENCED_SYSTEM_CHECKS = [
    # security.W004: HSTS is set by the TLS-terminating reverse proxy, not by Django.
    "security.W004",
    # security.W008: the reverse proxy redirects plain HTTP to HTTPS before us.
    "security.W008",
]

# REST framework --------------------------------------------------------------------------

REST_FRAMEWORK = {
    # Token first: its WWW-Authenticate header turns "no credentials" into 401, not 403.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "experiments.api.authentication.UserTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": [
        "experiments.api.renderers.FastJSONRenderer",
        "rest_framework.renderers.BrowsableAPIRenderer",
    ],
    "DEFAULT_PARSER_CLASSES": ["experiments.api.parsers.BoundedJSONParser"],
    "DEFAULT_PAGINATION_CLASS": "experiments.api.pagination.PageNumberPagination",
    "PAGE_SIZE": 10,
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_VERSIONING_CLASS": "rest_framework.versioning.AcceptHeaderVersioning",
    "DEFAULT_VERSION": "1",
    "ALLOWED_VERSIONS": ["1"],
    "DEFAULT_THROTTLE_CLASSES": ["experiments.api.throttling.ResearchRateThrottle"],
    "EXCEPTION_HANDLER": "experiments.api.errors.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
    "DATETIME_FORMAT": "iso-8601",
    "COERCE_DECIMAL_TO_STRING": False,
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Research Engine API",
    "DESCRIPTION": (
        "The live control room for AI-agent experiments. Every change is also streamed "
        "over WebSocket; see docs/websocket.md."
    ),
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {
        "ExperimentStatusEnum": "experiments.models.ExperimentStatus",
        "RunStatusEnum": "agents.models.RunStatus",
        "RoleEnum": "experiments.models.Role",
    },
    "SERVE_AUTHENTICATION": [],
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
}

# Realtime (docs/websocket.md lists what each limit does) ---------------------------------

REALTIME = {
    # Largest client frame the consumer accepts; daphne's own frame limit is set to the
    # same in the Makefile (--websocket-max-frame-size).
    "MAX_MESSAGE_BYTES": 64 * 1024,
    # Messages queued for a socket whose client does not read; past it: close 4409.
    "MAX_OUTGOING_QUEUE": env.int("WS_MAX_OUTGOING_QUEUE", default=1000),
    "HEARTBEAT_SECONDS": env.float("WS_HEARTBEAT_SECONDS", default=20.0),
    # A message the channel layer dropped with nothing after it is found by comparing
    # each experiment's stored seq with what the process has delivered, this often.
    "SWEEP_SECONDS": env.float("WS_SWEEP_SECONDS", default=1.5),
    "TICKET_TTL_SECONDS": 30,
    # The dashboard's REST reads of one page of replayed events.
    "REPLAY_BATCH": 500,
}

# Approvals are checked this often; a timed-out plan fails within a few seconds.
APPROVAL_SWEEP_SECONDS = env.float("APPROVAL_SWEEP_SECONDS", default=1.0)
# Per-process background work (realtime/background.py); tests start it when they need it.
BACKGROUND_TASKS = env.bool("BACKGROUND_TASKS", default=True)

RESEARCH_ENGINE_VERSION = "1.0.0"

# Logging ---------------------------------------------------------------------------------

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        "django.request": {"level": "ERROR"},
        "daphne": {"level": "WARNING"},
        "httpx": {"level": "WARNING"},
        "httpcore": {"level": "WARNING"},
    },
}
