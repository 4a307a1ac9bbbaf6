"""A real Celery worker, started as its own process, consumes our queue."""

import os
import subprocess
import sys
import uuid

import pytest
from django.conf import settings

from core.tasks import ping


@pytest.fixture
def celery_worker_process():
    queue = f"test-{uuid.uuid4().hex[:8]}"  # private queue: no other worker steals our task
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "soundstudio.settings.test"}
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
            "-Q",
            queue,
            "--without-heartbeat",
            "--without-gossip",
            "--without-mingle",
        ],
        env=env,
        cwd=settings.BASE_DIR,
    )
    yield queue
    process.terminate()
    process.wait(20)


@pytest.mark.slow
def test_task_is_executed_by_a_real_worker(celery_worker_process):
    token = uuid.uuid4().hex

    result = ping.apply_async(args=[token], queue=celery_worker_process)

    assert result.get(timeout=60) == token
