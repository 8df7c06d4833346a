"""gunicorn settings: `gunicorn keyportal.wsgi:application -c keyportal/gunicorn.conf.py`."""

import os

# Keys' rate limits and usage budgets (apikeys/limits.py), like the limit on failed attempts,
# are counted in the cache. With REDIS_URL every worker and host shares that count. Without it
# the cache is each process's own memory: the embedded default then serves from one process,
# whose threads share the count, so a limit of 100 a minute is 100, not 100 per worker.
if os.environ.get("REDIS_URL"):
    workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
else:
    workers = 1
    threads = 4
accesslog = "-"
# %(U)s is the path without its query string: a key someone wrongly puts in a URL must not
# reach the access log (the API refuses such requests, and says to rotate the key).
access_log_format = '%(h)s %(t)s "%(m)s %(U)s %(H)s" %(s)s %(b)s %(M)sms'


def child_exit(server, worker):
    """With PROMETHEUS_MULTIPROC_DIR (several workers add up their metrics), drop a dead worker's
    live gauges from the scrape (keyportal/metrics.py)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
