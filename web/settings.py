"""Django settings: every value comes from the environment through web.config (fails fast)."""

from __future__ import annotations

from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

from web import config

try:
    ENV = config.load()
except config.ConfigError as exc:
    raise ImproperlyConfigured(str(exc)) from None

BASE_DIR = Path(__file__).resolve().parent
NNT_HOME = ENV.nnt_home
NNT_KAFKA_BOOTSTRAP = ENV.nnt_kafka_bootstrap
NNT_KAFKA_TIMEOUT_S = ENV.nnt_kafka_timeout_s
# WebSettings is a schemas.kafkaauth.KafkaSecurity: the credentials of every Kafka client here.
NNT_KAFKA_SECURITY = ENV
NNT_LIVE_BRIDGE = ENV.nnt_live_bridge
NNT_PREFLIGHT = ENV.nnt_preflight
NNT_COMMAND_SECRET = ENV.nnt_command_secret
NNT_PREFLIGHT_TIMEOUT_S = ENV.nnt_preflight_timeout_s
NNT_WEB_PORT = ENV.nnt_web_port
DATASETS_DIR = NNT_HOME / "datasets"
# The orchestrators' run directories (read only here: each run.json names its owner and its
# datasets, which is how a user's dataset storage is counted; schemas/storage.py).
RUNS_DIR = NNT_HOME / "runs"

SECRET_KEY = config.secret_key(ENV)
DEBUG = ENV.nnt_debug
ALLOWED_HOSTS = ENV.allowed_hosts()

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django.contrib.postgres",
    "channels",
    "ninja",  # /api/docs from ninja's own Swagger UI files, not its CDN page: the product runs offline
    "web.accounts",
    "web.simulations",
    "web.live",
    "web.console",
    "web.experiments",
]

MIDDLEWARE = [
    "web.simulations.uploads.RequestSizeLimit",
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "web.urls"
ASGI_APPLICATION = "web.asgi.application"
CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

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
                "web.views.site",
            ],
        },
    },
]

DATABASES = {"default": config.parse_database_url(ENV.database_url)}
# The same database through psycopg: uploads are shared with every orchestrator (store/blobs.py).
NNT_DATABASE_URL = ENV.database_url
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "login"
AUTHENTICATION_BACKENDS = ["django.contrib.auth.backends.ModelBackend"]
LOGIN_REDIRECT_URL = "simulations:list"
LOGOUT_REDIRECT_URL = "home"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]

# Uploads larger than this go to a temp file, then are hashed into $NNT_HOME/datasets.
FILE_UPLOAD_MAX_MEMORY_SIZE = 8 * 1024 * 1024
DATA_UPLOAD_MAX_MEMORY_SIZE = 16 * 1024 * 1024
# Size limits of a submission (web.simulations.uploads): the first handler counts every file as
# it is parsed and keeps nothing of one past its limit; the request body itself is capped by
# the server (web.server) and by the middleware below. Temp files live in a private folder.
NNT_MAX_UPLOAD_BYTES = ENV.nnt_max_upload_bytes
NNT_MAX_EXPERIMENT_UPLOAD_BYTES = ENV.nnt_max_experiment_upload_bytes
NNT_MAX_MODEL_BYTES = ENV.nnt_max_model_bytes
FILE_UPLOAD_HANDLERS = [
    "web.simulations.uploads.LimitedUploadHandler",
    "django.core.files.uploadhandler.MemoryFileUploadHandler",
    "django.core.files.uploadhandler.TemporaryFileUploadHandler",
]
FILE_UPLOAD_TEMP_DIR = str(config.private_dir(NNT_HOME / "tmp"))
# Open WebSockets re-check their session and account this often (web.live.sessions).
NNT_SOCKET_RECHECK_S = ENV.nnt_socket_recheck_s

# Security (issue 8.3). Always on: CSRF on every state-changing browser request (the
# middleware, and django-ninja's session auth), httponly session cookie, no framing, nosniff.
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
CSRF_TRUSTED_ORIGINS = ENV.csrf_trusted_origins()
NNT_HTTPS = ENV.nnt_https
if NNT_HTTPS:
    # TLS ends at a reverse proxy, which must set (overwrite) X-Forwarded-Proto.
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = not DEBUG
    SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = 0 if DEBUG else ENV.nnt_hsts_seconds
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True

# Failed logins per (username, IP) within the window lock that pair out (web.accounts.throttle).
NNT_LOGIN_MAX_FAILURES = ENV.nnt_login_max_failures
NNT_LOGIN_WINDOW_S = ENV.nnt_login_window_s
# Accounts created per IP within the window (pages and API alike).
NNT_REGISTER_MAX_PER_IP = ENV.nnt_register_max_per_ip
NNT_REGISTER_WINDOW_S = ENV.nnt_register_window_s
# Per-user quota defaults; admins override them per user in the console.
NNT_QUOTA_MAX_CONCURRENT_RUNS = ENV.nnt_quota_max_concurrent_runs
NNT_QUOTA_MAX_MEMORY_BYTES = ENV.nnt_quota_max_memory_bytes

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "filters": {"one_line": {"()": "web.errors.OneLine"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": "INFO"},
    "loggers": {
        "aiokafka": {"level": "WARNING"},
        "django.channels.server": {"level": "WARNING"},
        # A bad Host header is the client's mistake (a 400), not a failure: one line.
        "django.security.DisallowedHost": {"level": "WARNING", "filters": ["one_line"]},
    },
}
