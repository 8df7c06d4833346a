"""keyportal's real WSGI application, with the answering worker's pid in an `X-Test-Worker`
response header: only so the integration tests can see that every gunicorn worker refused a key.
The application itself is untouched."""

from __future__ import annotations

import os

from keyportal.wsgi import application as keyportal_application

WORKER_HEADER = "X-Test-Worker"


def application(environ, start_response):
    def start(status, headers, exc_info=None):
        return start_response(status, [*headers, (WORKER_HEADER, str(os.getpid()))], exc_info)

    return keyportal_application(environ, start)
