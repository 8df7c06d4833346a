"""keyportal's command-line client (`keyportal login`, then keys, apps and secrets), and a small
library for scripts and notebooks."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

__version__: str
try:
    __version__ = version("keyportal-cli")
except PackageNotFoundError:  # run from a checkout that was never installed
    __version__ = "0.0.0"

# After __version__, which the modules below read.
from keyportal_cli.library import Client, KeyportalError, Keys, login

__all__ = ["Client", "KeyportalError", "Keys", "__version__", "login"]
