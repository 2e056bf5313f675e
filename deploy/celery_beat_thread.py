"""`celery … worker --beat` with the embedded scheduler in a thread of the worker, not a forked process.

Celery's -B starts the scheduler (celery.beat.Service) in a forked child process, unless
multiprocessing is unavailable: then it runs the very same service in a thread of the worker
(celery.beat._Threaded). For the NAS profile's one solo worker the thread is all that is needed and
saves a whole Python process (about 40 MB of PSS measured here); the schedule, its file and the tasks
are the same. Used by `deploy/entrypoint.sh all`: `python deploy/celery_beat_thread.py -A identityhub
worker --beat …` takes exactly celery's own arguments.
"""

import sys

import celery.beat

if __name__ == "__main__":
    celery.beat._Process = None  # EmbeddedService() then returns the threaded service
    from celery.__main__ import main

    sys.exit(main())
