"""keyportal's command-line client: `keyportal login`, then keys, apps and secrets."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("keyportal")
except PackageNotFoundError:  # run from a checkout that was never installed
    __version__ = "0.0.0"
