"""kombu's filesystem broker (the default without Redis), made safe to read while it is written.

Applied by `identityhub.celery` at import, so every process of the hub — web, worker, beat, the
one-process NAS profile (`deploy/hub_all.py`), `manage.py hub` — writes and reads messages this way.
"""

from __future__ import annotations

import logging
import os
import time
import uuid

log = logging.getLogger("identityhub.broker")


def harden_filesystem_broker() -> None:
    """kombu's filesystem transport opens a new message file, then writes it; its reader takes (moves
    away, reads, deletes) any `*.<queue>.msg` file it lists, without a lock. Here beat's thread sends
    its due tasks on the very instants the worker polls (both tick on the second from the same start;
    at a restart beat sends what fell due while the hub was down, at once), and the worker read a
    message still empty: JSONDecodeError, "Unrecoverable error", the hub exited 1 a few seconds after
    it started, now and then. The same race exists between separate processes on this broker (a web
    process queueing a sync or a logout, `make beat` and `make worker`). So, in every process that
    imports the hub's Celery app:

    - a message is written under a name the reader skips (`.<name>.part`), then renamed into place
      (atomic): a listed message file is always complete;
    - a message file that cannot be decoded anyway (left empty by a writer killed half-way, or being
      written by another process, e.g. `manage.py hub`) is dropped with an error in the log instead
      of ending the worker.
    """
    from kombu.transport import filesystem

    channel = filesystem.Channel
    if getattr(channel, "hub_hardened", False):
        return
    kombu_get = channel._get

    def _put(self, queue, payload, **_kwargs):
        name = f"{int(round(time.monotonic() * 1000))}_{uuid.uuid4()}.{queue}.msg"  # kombu's names (FIFO)
        final = os.path.join(self.data_folder_out, name)
        partial = os.path.join(self.data_folder_out, f".{name}.part")
        try:
            with open(partial, "wb") as file:
                file.write(filesystem.str_to_bytes(filesystem.dumps(payload)))
            os.replace(partial, final)
        except OSError as error:
            raise filesystem.ChannelError(f"Cannot add file {final!r} to directory") from error

    def _get(self, queue):
        while True:  # each call takes one file off the queue: it ends with a message, or Empty
            try:
                return kombu_get(self, queue)
            except ValueError as error:  # JSONDecodeError, UnicodeDecodeError: not a message
                log.error("broker: dropped an unreadable message file of queue %s: %r", queue, error)

    channel.hub_kombu_methods = (channel._put, kombu_get)  # kombu's own, for tests
    channel._put, channel._get, channel.hub_hardened = _put, _get, True
