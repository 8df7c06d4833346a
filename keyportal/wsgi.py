"""WSGI entry point for gunicorn: keyportal.wsgi:application."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "keyportal.settings")
application = get_wsgi_application()
