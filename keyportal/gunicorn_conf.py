"""keyportal/gunicorn.conf.py as an importable module, for an installed package:

    gunicorn keyportal.wsgi:application -c python:keyportal.gunicorn_conf

gunicorn's `-c python:MODULE` imports a module, and `gunicorn.conf.py` cannot be imported by
name; this module runs that file and takes its settings, so both spellings give the same server.
"""

import runpy
from pathlib import Path

globals().update(
    {
        name: value
        for name, value in runpy.run_path(str(Path(__file__).with_name("gunicorn.conf.py"))).items()
        if not name.startswith("__")
    }
)
