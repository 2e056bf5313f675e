"""gunicorn settings for `deploy/entrypoint.sh all` (the NAS profile), which runs gunicorn with --preload.

With --preload the master imports identityhub.wsgi once, before forking: the code, the settings and
the signing key ring are loaded once and shared copy-on-write with the worker, and a worker restarted
after a crash serves at once. Loading the key ring opened a database connection in the master; a
connection must never be shared across fork (SQLite's rule; a PostgreSQL socket would be shared by
two processes), so the master closes it before any worker is forked. The worker's request threads
open their own.
"""


def when_ready(server):  # in the master, after the app is loaded (--preload), before the first fork
    from django.conf import settings

    if settings.configured:  # without --preload nothing was loaded here
        from django.db import connections

        connections.close_all()
