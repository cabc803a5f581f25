import gc
import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "network.settings")
application = get_wsgi_application()

# What the worker loaded to start (Django, the apps, the schema) lives as long as the worker:
# moved out of the garbage collector's sight, so its full collections stop walking it on
# requests (they showed as 10-20 ms stalls in the agent poll's p99).
gc.collect()
gc.freeze()
