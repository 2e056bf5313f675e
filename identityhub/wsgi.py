import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "identityhub.settings")

application = get_wsgi_application()

# HUB_CONFIG + HUB_APPLY_ON_START=1: apply the config file before serving (one process at a time).
from identityhub.config.startup import apply_on_start  # noqa: E402

apply_on_start()

# Every process loads the same signing key before serving. A key that cannot be decrypted (a
# changed HUB_ENCRYPTION_KEY) stops the start here, loudly; it is never replaced silently.
from identityhub.oidc.keys import keyring  # noqa: E402

keyring()

# Connections are persistent (CONN_MAX_AGE): the one the loading above opened must not outlive it.
# With gunicorn --preload this module runs in the master, and a connection inherited across fork
# (an SQLite handle, a PostgreSQL socket) would be shared by processes. Each request thread opens its own.
from django.db import connections  # noqa: E402

connections.close_all()
