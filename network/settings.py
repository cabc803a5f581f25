"""Django settings for DATAS.

Every setting that differs between deployments is read from the environment; the defaults
give the embedded set-up (SQLite, no Redis, files on the local disk). The README lists them
all in one table.
"""
import json
import os
import tempfile
from pathlib import Path

import dj_database_url

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("DATAS_VAR_DIR", BASE_DIR / "var"))


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


DEBUG = env_bool("DEBUG", True)
# The fallback key is for the embedded demo only; production sets SECRET_KEY.
SECRET_KEY = os.environ.get("SECRET_KEY", "insecure-embedded-demo-key-set-SECRET_KEY-in-production")
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "127.0.0.1,localhost,testserver")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", "http://127.0.0.1:8000,http://localhost:8000")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI and ReDoc served from here, not a CDN
    "django_celery_beat",
    "network",
    "sites",
    "targets",
    "observations",
    "scheduling",
    "demo",
    "portal",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "network.urls"
WSGI_APPLICATION = "network.wsgi.application"

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

# --- Database -------------------------------------------------------------------------
if not os.environ.get("DATABASE_URL"):
    # The embedded default keeps its SQLite file under var/, which a fresh clone lacks.
    VAR_DIR.mkdir(parents=True, exist_ok=True)
DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL") or f"sqlite:///{VAR_DIR / 'datas.sqlite3'}",
        conn_max_age=60,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # q3c's cost estimates are huge, so the planner switches JIT on and q3c_join pays
    # 150-450 ms for it; off per connection needs no superuser.
    DATABASES["default"].setdefault("OPTIONS", {})["options"] = "-c jit=off"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache and Celery -----------------------------------------------------------------
REDIS_URL = os.environ.get("REDIS_URL") or ""
if REDIS_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
    CELERY_BROKER_URL = REDIS_URL
    CELERY_RESULT_BACKEND = REDIS_URL
    CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    CELERY_BROKER_URL = "memory://localhost/"
    CELERY_RESULT_BACKEND = "cache+memory://"
    # No broker: run tasks in the calling process so the embedded demo still does the work.
    CELERY_TASK_ALWAYS_EAGER = True
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_TIMEZONE = "UTC"
# A task whose worker died (unacknowledged) is handed to another worker once it is this many
# seconds old; keep it above the longest task (a blind plate solve) so a slow task is not
# started twice (a repeat would still change nothing: the tasks are idempotent). Workers look
# for such tasks every DATAS_TASK_RESTORE_INTERVAL seconds.
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": int(os.environ.get("DATAS_TASK_VISIBILITY_TIMEOUT", "1800")),
    "unacked_restore_interval": int(os.environ.get("DATAS_TASK_RESTORE_INTERVAL", "10")),
    "unacked_restore_throttle": 1,
}
# The frame pipeline has its own queue so its workers can run on other machines.
DATAS_PIPELINE_QUEUE = os.environ.get("DATAS_PIPELINE_QUEUE", "pipeline")
CELERY_TASK_ROUTES = {"pipeline.*": {"queue": DATAS_PIPELINE_QUEUE}}

# --- Auth, i18n, static ---------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]
LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/"

LANGUAGE_CODE = "en-gb"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"] if (BASE_DIR / "static").is_dir() else []
STATIC_ROOT = Path(os.environ.get("STATIC_ROOT", BASE_DIR / "staticfiles"))
# Plotly's bundle is served from the installed wheel (portal.finders), never from a CDN.
STATICFILES_FINDERS = ["django.contrib.staticfiles.finders.FileSystemFinder",
                       "django.contrib.staticfiles.finders.AppDirectoriesFinder",
                       "portal.finders.PlotlyFinder"]
# Invitations go out through this backend; the console one prints them (the demo, development).
EMAIL_BACKEND = os.environ.get("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "datas@localhost")
# Development serves static files straight from the apps (no collectstatic needed, no warning
# about a missing STATIC_ROOT); production runs collectstatic and serves STATIC_ROOT.
WHITENOISE_AUTOREFRESH = DEBUG
WHITENOISE_USE_FINDERS = DEBUG
MEDIA_ROOT = Path(os.environ.get("MEDIA_ROOT", VAR_DIR / "media"))
MEDIA_URL = "media/"


def storages_from_env(environ: dict[str, str]) -> dict:
    """Where files (FITS frames, uploads) live: the local disk, or S3 when a bucket is named.

    Any S3-compatible store works (AWS, MinIO, Ceph, moto in tests): set
    ``AWS_STORAGE_BUCKET_NAME`` and, off AWS, ``AWS_S3_ENDPOINT_URL``. Credentials come the
    usual boto3 way (``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY`` or an instance role).
    """
    storages = {
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    bucket = environ.get("AWS_STORAGE_BUCKET_NAME", "")
    if bucket:
        storages["default"] = {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {
                "bucket_name": bucket,
                "endpoint_url": environ.get("AWS_S3_ENDPOINT_URL") or None,
                "region_name": environ.get("AWS_S3_REGION_NAME") or None,
                "location": environ.get("AWS_LOCATION", ""),
                "default_acl": None,
                "file_overwrite": False,
                "querystring_auth": True,
            },
        }
    return storages


def frame_storage_from_env(environ: dict[str, str], media_root: Path) -> dict:
    """The ``frames`` storage (FITS frames, previews, staged uploads; docs/ingest.md).

    The same place as the default storage: ``MEDIA_ROOT/frames`` on disk, or the bucket of
    ``AWS_STORAGE_BUCKET_NAME``. Keys are content-addressed, so a key is overwritten in place
    rather than renamed; pre-signed URLs are SigV4 and short-lived.
    """
    bucket = environ.get("AWS_STORAGE_BUCKET_NAME", "")
    if not bucket:
        return {"BACKEND": "django.core.files.storage.FileSystemStorage",
                "OPTIONS": {"location": str(media_root / "frames"), "base_url": f"/{MEDIA_URL}frames/"}}
    return {"BACKEND": "storages.backends.s3.S3Storage", "OPTIONS": {
        "bucket_name": bucket,
        "endpoint_url": environ.get("AWS_S3_ENDPOINT_URL") or None,
        "region_name": environ.get("AWS_S3_REGION_NAME") or None,
        "location": environ.get("AWS_LOCATION", ""),
        "addressing_style": environ.get("AWS_S3_ADDRESSING_STYLE") or None,
        "signature_version": "s3v4",
        "default_acl": None,
        "file_overwrite": True,
        "querystring_expire": 600,
    }}


STORAGES = {**storages_from_env(dict(os.environ)), "frames": frame_storage_from_env(dict(os.environ), MEDIA_ROOT)}
# Largest frame accepted, bytes (uploads and pre-signed uploads alike).
DATAS_MAX_FRAME_BYTES = int(os.environ.get("DATAS_MAX_FRAME_BYTES", str(512 * 1024**2)))
# How long a pre-signed upload URL stays valid, seconds.
DATAS_UPLOAD_URL_EXPIRES_S = int(os.environ.get("DATAS_UPLOAD_URL_EXPIRES_S", "3600"))
# Workers copy frames from S3 here; the only local disk a pipeline task uses.
DATAS_SCRATCH_DIR = Path(os.environ.get("DATAS_SCRATCH_DIR", Path(tempfile.gettempdir()) / "datas-scratch"))
DATAS_SCRATCH_MAX_BYTES = int(os.environ.get("DATAS_SCRATCH_MAX_BYTES", str(4 * 1024**3)))
# Start the pipeline when a frame arrives (off: frames are only catalogued until
# `manage.py frame_pipeline` is run).
DATAS_PIPELINE_ON_UPLOAD = env_bool("DATAS_PIPELINE_ON_UPLOAD", True)
# Plate solving: CPU seconds per blind solve, and the search radius around the header's
# pointing, degrees.
DATAS_SOLVE_CPU_LIMIT_S = float(os.environ.get("DATAS_SOLVE_CPU_LIMIT_S", "30"))
DATAS_SOLVE_RADIUS_DEG = float(os.environ.get("DATAS_SOLVE_RADIUS_DEG", "2"))

# --- API ------------------------------------------------------------------------------
# API keys by kind (the prefix before "_"): the function that authenticates each (network.api).
DATAS_KEY_AUTHENTICATORS = {
    "dsk": "sites.auth.authenticate_agent",       # site keys: the agent of one site
    "dut": "network.services.authenticate_person",  # personal tokens
}

REST_FRAMEWORK = {
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    # Bearer first, so an unauthenticated request gets 401 with WWW-Authenticate: Bearer.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "network.api.BearerKeyAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["network.api.Authenticated"],
    "DEFAULT_THROTTLE_CLASSES": ["network.throttles.AgentRateThrottle", "network.throttles.PersonRateThrottle"],
    "DEFAULT_PAGINATION_CLASS": "network.api.Pagination",
    "DEFAULT_PARSER_CLASSES": ["network.api.StrictJSONParser",
                               "rest_framework.parsers.FormParser",
                               "rest_framework.parsers.MultiPartParser"],
    "EXCEPTION_HANDLER": "network.api_errors.api_exception_handler",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer",
                                 "rest_framework.renderers.BrowsableAPIRenderer"],
}
# Requests per site key and per person (N/second|minute|hour|day), counted atomically
# (network/throttles.py); failed authentications allowed per address in 10 minutes before
# that address must wait (1 s, doubling with every further failure, up to 15 min).
DATAS_AGENT_THROTTLE_RATE = os.environ.get("DATAS_AGENT_THROTTLE_RATE", "120/minute")
DATAS_PERSON_THROTTLE_RATE = os.environ.get("DATAS_PERSON_THROTTLE_RATE", "1200/minute")
DATAS_AUTH_FAILURES_ALLOWED = int(os.environ.get("DATAS_AUTH_FAILURES_ALLOWED", "20"))
# How far in the future an observed_at may be (clock skew of the site PC), seconds.
DATAS_CLOCK_SKEW_SECONDS = int(os.environ.get("DATAS_CLOCK_SKEW_SECONDS", "120"))
SPECTACULAR_SETTINGS = {
    "TITLE": "DATAS API",
    "DESCRIPTION": "Tasking, observations and data for networks of amateur and robotic telescopes.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    # The docs page works offline: its scripts and styles come from this server.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "ENUM_NAME_OVERRIDES": {"AlertStatusEnum": "targets.models.AlertStatus", "SiteStatusEnum": "sites.models.SiteStatus"},
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "network.schema.strip_trailing_slashes",
        "network.schema.document_errors",
        "network.schema.conditional_fields_optional",
    ],
}

# --- DATAS ----------------------------------------------------------------------------
# A site counts as online when its agent checked in within this many seconds.
DATAS_SITE_ONLINE_SECONDS = int(os.environ.get("DATAS_SITE_ONLINE_SECONDS", "900"))

# --- Network scheduler (network/scheduling, scheduling/passes.py) -------------------------
# Minutes between passes: the beat entry is created with this at migrate; edit it in the admin
# (Periodic tasks) afterwards. A list stays valid until the next pass.
DATAS_SCHEDULE_INTERVAL_MINUTES = int(os.environ.get("DATAS_SCHEDULE_INTERVAL_MINUTES", "5"))
# Entries kept per site's ranked list (agents ask for up to this many).
DATAS_SCHEDULE_LIST_LENGTH = int(os.environ.get("DATAS_SCHEDULE_LIST_LENGTH", "50"))
# Darkness sites need (civil, nautical, astronomical) and the closest approach to the Moon, degrees.
DATAS_SCHEDULE_TWILIGHT = os.environ.get("DATAS_SCHEDULE_TWILIGHT", "nautical")
DATAS_SCHEDULE_MOON_SEPARATION_DEG = float(os.environ.get("DATAS_SCHEDULE_MOON_SEPARATION_DEG", "15"))
# A weather report older than this means the site gets nothing to do, seconds.
DATAS_WEATHER_MAX_AGE_SECONDS = int(os.environ.get("DATAS_WEATHER_MAX_AGE_SECONDS", "1800"))

# --- Alert ingest (targets/alerts) -------------------------------------------------------
# The alert source classes (each has a name), tried in this order when a packet's format is sniffed.
DATAS_ALERT_SOURCES = env_list("DATAS_ALERT_SOURCES", ",".join([
    "targets.alerts.sources.ztf.ZtfAvroSource", "targets.alerts.sources.gcn.GcnJsonSource",
    "targets.alerts.sources.voevent.VoEventSource", "targets.alerts.sources.gaia.GaiaAlertsSource",
    "targets.alerts.sources.tns.TnsSource"]))
# Kafka streams for `manage.py run_alert_streams`: a JSON list of {"name", "source", "topics",
# "bootstrap_servers", "group_id", optional "config" (librdkafka options), "batch_size", "networks"}.
DATAS_ALERT_STREAMS = json.loads(os.environ.get("DATAS_ALERT_STREAMS", "[]"))
# Polled sources given a Celery beat entry (none by default: nothing is fetched unless asked).
DATAS_ALERT_POLL_SOURCES = env_list("DATAS_ALERT_POLL_SOURCES", "")
DATAS_ALERT_POLL_MINUTES = int(os.environ.get("DATAS_ALERT_POLL_MINUTES", "60"))
# Packets larger than this are refused (bytes); HTTP answers may be 64 times larger.
DATAS_ALERT_MAX_BYTES = int(os.environ.get("DATAS_ALERT_MAX_BYTES", str(2 * 1024**2)))
DATAS_ALERT_HTTP_TIMEOUT_S = float(os.environ.get("DATAS_ALERT_HTTP_TIMEOUT_S", "60"))
# Alerts stored per database transaction by files, streams and polls.
DATAS_ALERT_BATCH_SIZE = int(os.environ.get("DATAS_ALERT_BATCH_SIZE", "500"))
DATAS_GAIA_ALERTS_URL = os.environ.get("DATAS_GAIA_ALERTS_URL", "http://gsaweb.ast.cam.ac.uk/alerts/alerts.csv")
DATAS_TNS_URL = os.environ.get("DATAS_TNS_URL", "https://www.wis-tns.org").rstrip("/")
DATAS_TNS_API_KEY = os.environ.get("DATAS_TNS_API_KEY", "")
DATAS_TNS_BOT_ID = int(os.environ.get("DATAS_TNS_BOT_ID", "0"))
DATAS_TNS_BOT_NAME = os.environ.get("DATAS_TNS_BOT_NAME", "datas_bot")
# Field of view assumed for tiling an error region when no active site states one (arcmin).
DATAS_ALERT_DEFAULT_FOV_ARCMIN = float(os.environ.get("DATAS_ALERT_DEFAULT_FOV_ARCMIN", "60"))

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
}
