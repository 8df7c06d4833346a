"""The command groups of `keyportal`: app, environments, keys and secrets."""
