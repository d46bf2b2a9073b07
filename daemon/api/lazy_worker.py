"""The worker class gunicorn's master loads: a plain gunicorn Worker that becomes
daemon.api.worker.StationWorker (gevent) in the forked worker process.

The master only builds worker objects and forks them, and every module it imports is resident in
it for good: loading StationWorker itself there would import gevent into the master (+5.7 MiB RSS,
measured) for nothing.
"""
from __future__ import annotations

from gunicorn.workers.base import Worker


class LazyStationWorker(Worker):
    def init_process(self) -> None:
        from daemon.api.worker import StationWorker  # in the worker process only
        StationWorker.adopt(self)
        self.init_process()
