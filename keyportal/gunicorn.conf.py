"""gunicorn settings: `gunicorn keyportal.wsgi:application -c keyportal/gunicorn.conf.py`."""

workers = 2
accesslog = "-"
# %(U)s is the path without its query string: a key someone wrongly puts in a URL must not
# reach the access log (the API refuses such requests, and says to rotate the key).
access_log_format = '%(h)s %(t)s "%(m)s %(U)s %(H)s" %(s)s %(b)s %(M)sms'
