"""keyportal's settings, read from the environment (see the README's configuration table)."""

from __future__ import annotations

import base64
import hashlib
import os
from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from django.utils.csp import CSP

PACKAGE_DIR = Path(__file__).resolve().parent  # templates/ and static/ are inside, as in the wheel
BASE_DIR = PACKAGE_DIR.parent
# A checkout (manage.py beside the package) keeps its files in the checkout, as always; an
# installed package (`keyportal-server`, gunicorn from a venv) in the current directory, never in
# site-packages. KEYPORTAL_DATA_DIR holds the default SQLite database and uploaded bundles.
CHECKOUT = (BASE_DIR / "manage.py").is_file()
DATA_DIR = Path(
    os.environ.get("KEYPORTAL_DATA_DIR") or (BASE_DIR / "data" if CHECKOUT else "data")
).absolute()


def env_bool(name: str, default: bool) -> bool:
    """Return an environment flag: 1, true, yes and on are true."""
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str) -> list[str]:
    """Return a comma-separated environment variable as a list."""
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


PRODUCTION = os.environ.get("KEYPORTAL_ENV", "development") == "production"
DEVELOPMENT_SECRET_KEY = "django-insecure-keyportal-development-only-never-use-in-production"  # noqa: S105

SECRET_KEY = os.environ.get("SECRET_KEY", DEVELOPMENT_SECRET_KEY)
if PRODUCTION and (SECRET_KEY == DEVELOPMENT_SECRET_KEY or len(SECRET_KEY) < 50):
    raise ImproperlyConfigured(
        "KEYPORTAL_ENV=production needs SECRET_KEY set to a random value of 50 or more "
        "characters; the development key is refused."
    )


def secrets_keys(value: str, *, secret_key: str) -> str:
    """Return the master key(s) for secret values, checked; derived from SECRET_KEY if unset.

    Several comma-separated keys are allowed while the master key changes: the first
    encrypts, every one decrypts (projects/crypto.py).
    """
    if not value:
        if PRODUCTION:
            raise ImproperlyConfigured(
                "KEYPORTAL_ENV=production needs KEYPORTAL_SECRETS_KEY: a Fernet key, from "
                '`python -c "from cryptography.fernet import Fernet; '
                'print(Fernet.generate_key().decode())"`. Losing it makes every secret unreadable.'
            )
        # A stable development key, so a development database's secrets survive restarts.
        digest = hashlib.sha256((secret_key + "keyportal-secrets").encode()).digest()
        return base64.urlsafe_b64encode(digest).decode()
    for key in value.split(","):
        try:
            valid = len(base64.urlsafe_b64decode(key.strip().encode())) == 32
        except ValueError:  # binascii.Error included
            valid = False
        if not valid:
            raise ImproperlyConfigured(
                "KEYPORTAL_SECRETS_KEY must hold Fernet keys (32 bytes in URL-safe base64), "
                "separated by commas when there are several."
            )
    return value


KEYPORTAL_SECRETS_KEY = secrets_keys(
    os.environ.get("KEYPORTAL_SECRETS_KEY", "").strip(), secret_key=SECRET_KEY
)

DEBUG = env_bool("DEBUG", default=not PRODUCTION)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "" if PRODUCTION else "127.0.0.1,localhost,[::1]")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", "")

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django.forms",
    "django_htmx",
    "ninja",
    "axes",
    "django_tasks_db",
    "crontask",
    "accounts",
    "projects",
    "apikeys",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "keyportal.middleware.ApiNoStoreMiddleware",
    "apikeys.middleware.KeyInURLMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.middleware.csp.ContentSecurityPolicyMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "keyportal.middleware.HtmxMessagesMiddleware",
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "keyportal.urls"
WSGI_APPLICATION = "keyportal.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [PACKAGE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.csp",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "accounts.context_processors.console",
            ],
            "builtins": [
                "django.contrib.humanize.templatetags.humanize",
                "accounts.templatetags.console",
                "accounts.templatetags.once",
            ],
        },
    },
]

DATABASES = {
    # An empty DATABASE_URL means the default, like an unset one.
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL") or f"sqlite:///{DATA_DIR / 'keyportal.sqlite3'}",
        conn_max_age=int(os.environ.get("DATABASE_CONN_MAX_AGE", "60")),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets the gunicorn workers read while one writes; IMMEDIATE avoids upgrade deadlocks.
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "init_command": (
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=5000;"
        ),
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = os.environ.get("REDIS_URL", "")
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "keyportal",
            # A hung Redis must not hold requests (or the readiness probe) for long: a limited
            # key is then refused with 503 and Retry-After (apikeys/verification.py).
            "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# Background and scheduled work (mail, expiry reminders, the stale-key policy, housekeeping) runs
# on django.tasks. Tasks wait in the database (the django-tasks project's backend, on SQLite and
# PostgreSQL alike) until `manage.py db_worker` takes them; any number of workers on any number
# of hosts share the queue. `manage.py crontask` enqueues the periodic jobs (apikeys/tasks.py,
# accounts/tasks.py); with REDIS_URL set, one scheduler at a time holds a lock in Redis and any
# other exits after 15 s (run it under a supervisor that restarts it, README). Every job is safe
# to run twice, so a second scheduler without Redis only repeats work.
TASKS = {
    "default": {
        "BACKEND": "django_tasks_db.DatabaseBackend",
        "QUEUES": ["default"],
    }
}
CRONTASK = {"REDIS_URL": REDIS_URL or None}

AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

# Login throttling (django-axes): five failures for one email from one address lock that pair
# for fifteen minutes. The counters must be shared by every worker and host: in Redis when it
# is configured, otherwise in the database (the local-memory cache is per process).
AXES_HANDLER = (
    "axes.handlers.cache.AxesCacheHandler"
    if REDIS_URL
    else "axes.handlers.database.AxesDatabaseHandler"
)
AXES_FAILURE_LIMIT = int(os.environ.get("KEYPORTAL_LOGIN_FAILURE_LIMIT", "5"))
AXES_COOLOFF_TIME = timedelta(minutes=15)
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_USERNAME_FORM_FIELD = "username"
AXES_LOCKOUT_TEMPLATE = "accounts/login_locked.html"
AXES_RESET_ON_SUCCESS = True
AXES_CLIENT_IP_CALLABLE = "keyportal.http.client_ip_for_axes"
AXES_USERNAME_CALLABLE = "keyportal.http.login_username_for_axes"
AXES_VERBOSE = False
# Key usage is buffered per worker and written every this many seconds (apikeys/usage.py).
KEYPORTAL_USAGE_FLUSH_SECONDS = int(os.environ.get("KEYPORTAL_USAGE_FLUSH_SECONDS", "10"))
# Failed API authentications allowed per client address per minute before 429.
KEYPORTAL_API_AUTH_FAILURES_PER_MINUTE = int(
    os.environ.get("KEYPORTAL_API_AUTH_FAILURES_PER_MINUTE", "30")
)
# Run the key lookup as a prepared statement on PostgreSQL (apikeys/verification.py). Turn off
# behind a transaction-mode pooler that cannot keep prepared statements (PgBouncer < 1.22).
KEYPORTAL_PREPARED_LOOKUP = env_bool("KEYPORTAL_PREPARED_LOOKUP", default=True)
# `keyportal login` (apikeys/device.py): how long a code lives, the polling pace, and how many
# codes one address may ask for.
KEYPORTAL_DEVICE_CODE_SECONDS = int(os.environ.get("KEYPORTAL_DEVICE_CODE_SECONDS", "600"))
KEYPORTAL_DEVICE_POLL_SECONDS = 5
KEYPORTAL_DEVICE_CODES_RATE = "10/m"
# /metrics (keyportal/metrics.py): off unless a bearer token or an address list is set.
KEYPORTAL_METRICS_TOKEN = os.environ.get("KEYPORTAL_METRICS_TOKEN", "")
KEYPORTAL_METRICS_ALLOWED_IPS = os.environ.get("KEYPORTAL_METRICS_ALLOWED_IPS", "")
# The cache that counts keys' rate limits and usage budgets (apikeys/limits.py): Redis in
# production, so that a limit holds across every worker and host.
KEYPORTAL_LIMITS_CACHE = os.environ.get("KEYPORTAL_LIMITS_CACHE", "default")
TRUSTED_PROXY_COUNT = int(os.environ.get("KEYPORTAL_TRUSTED_PROXY_COUNT", "0"))
# The public leak report (POST /api/v1/keys/leaked, /report-leak): reports one address may send.
KEYPORTAL_LEAK_REPORTS_RATE = os.environ.get("KEYPORTAL_LEAK_REPORTS_RATE", "20/h")
# GitHub secret scanning (apikeys/github_scanning.py): where GitHub publishes the keys that sign
# its reports, fetched and cached for a day. For tests and air-gapped installs, give the keys
# themselves instead: KEYPORTAL_GITHUB_SCANNING_KEYS_FILE names a file holding that JSON document.
KEYPORTAL_GITHUB_SCANNING_KEYS_URL = os.environ.get(
    "KEYPORTAL_GITHUB_SCANNING_KEYS_URL",
    "https://api.github.com/meta/public_keys/secret_scanning",
)
KEYPORTAL_GITHUB_SCANNING_KEYS_FILE = os.environ.get("KEYPORTAL_GITHUB_SCANNING_KEYS_FILE", "")
# Where emails link to (expiry reminders, leak reports): the console's public address.
KEYPORTAL_BASE_URL = os.environ.get("KEYPORTAL_BASE_URL", "http://127.0.0.1:8000").rstrip("/")
# Daily usage rows older than this many days are deleted by the housekeeping job.
KEYPORTAL_USAGE_RETENTION_DAYS = int(os.environ.get("KEYPORTAL_USAGE_RETENTION_DAYS", "400"))
# Also deleted by the housekeeping jobs (docs/operators.md, "Background work") after this many
# days: django-axes' records of sign-in attempts, and the worker's finished task results.
KEYPORTAL_LOGIN_RECORDS_RETENTION_DAYS = int(
    os.environ.get("KEYPORTAL_LOGIN_RECORDS_RETENTION_DAYS", "30")
)
KEYPORTAL_TASK_RESULTS_RETENTION_DAYS = int(
    os.environ.get("KEYPORTAL_TASK_RESULTS_RETENTION_DAYS", "14")
)

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# Uploaded app bundles. Several hosts must share this folder (a network volume), or use
# another storage backend in STORAGES["default"].
MEDIA_ROOT = Path(os.environ.get("KEYPORTAL_MEDIA_ROOT", DATA_DIR / "media"))
MEDIA_URL = "media/"
DATA_UPLOAD_MAX_MEMORY_SIZE = 11 * 1024 * 1024

STATIC_URL = "static/"
STATICFILES_DIRS = [PACKAGE_DIR / "static"]
# collectstatic's output, served by whitenoise: staticfiles/ in a checkout, else ./staticfiles.
STATIC_ROOT = Path(
    os.environ.get("KEYPORTAL_STATIC_ROOT")
    or (BASE_DIR / "staticfiles" if CHECKOUT else "staticfiles")
).absolute()
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if PRODUCTION
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}

# Invitations go out through Django's mailer: the console in development, SMTP in production
# (EMAIL_HOST, default localhost) or whenever EMAIL_HOST is set.
if PRODUCTION or os.environ.get("EMAIL_HOST"):
    MAILERS = {
        "default": {
            "BACKEND": "django.core.mail.backends.smtp.EmailBackend",
            "OPTIONS": {
                "host": os.environ.get("EMAIL_HOST", "localhost"),
                "port": int(os.environ.get("EMAIL_PORT", "25")),
                "username": os.environ.get("EMAIL_HOST_USER", ""),
                "password": os.environ.get("EMAIL_HOST_PASSWORD", ""),
                "use_tls": env_bool("EMAIL_USE_TLS", default=False),
            },
        }
    }
elif os.environ.get("KEYPORTAL_EMAIL_FILE_PATH"):
    # Outside production and without EMAIL_HOST: each mail written to a file in this folder, for
    # the tests of the real worker (tests/integration) and for reading the emails in development.
    MAILERS = {
        "default": {
            "BACKEND": "django.core.mail.backends.filebased.EmailBackend",
            "OPTIONS": {"file_path": os.environ["KEYPORTAL_EMAIL_FILE_PATH"]},
        }
    }
else:
    MAILERS = {"default": {"BACKEND": "django.core.mail.backends.console.EmailBackend"}}
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "keyportal <keyportal@localhost>")

# Content Security Policy: only our own files, scripts only with the per-request nonce.
SECURE_CSP = {
    "default-src": [CSP.SELF],
    "script-src": [CSP.SELF, CSP.NONCE],
    "style-src": [CSP.SELF],
    "img-src": [CSP.SELF, "data:"],
    "connect-src": [CSP.SELF],
    "form-action": [CSP.SELF],
    "frame-ancestors": [CSP.NONE],
    "base-uri": [CSP.SELF],
    "object-src": [CSP.NONE],
}

SESSION_COOKIE_HTTPONLY = True
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
if PRODUCTION:
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", default=True)
    SECURE_HSTS_SECONDS = int(os.environ.get("SECURE_HSTS_SECONDS", "31536000"))
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    # Probes and scrapers inside the network may speak plain HTTP to a host.
    SECURE_REDIRECT_EXEMPT = [r"^api/v1/health$", r"^api/v1/ready$", r"^metrics$"]

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {"axes": {"level": "WARNING"}},
}

FORM_RENDERER = "keyportal.forms.ConsoleFormRenderer"
