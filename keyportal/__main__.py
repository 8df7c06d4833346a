"""`python -m keyportal COMMAND`: the same as `keyportal-server COMMAND` (keyportal/server.py)."""

from keyportal.server import main

if __name__ == "__main__":
    main(prog="python -m keyportal")
