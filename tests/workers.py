"""Start a real Celery worker process for a test."""

import contextlib
import os
import subprocess
import sys

from django.conf import settings


@contextlib.contextmanager
def celery_worker(*, queue: str, **env):
    """A solo-pool worker on `queue`, with extra environment variables; stopped after."""
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "soundstudio",
            "worker",
            "--pool=solo",
            "--loglevel=WARNING",
            "--without-heartbeat",
            "--without-gossip",
            "--without-mingle",
            "-Q",
            queue,
        ],
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "soundstudio.settings.test", **env},
        cwd=settings.BASE_DIR,
    )
    try:
        yield process
    finally:
        process.terminate()
        process.wait(20)
