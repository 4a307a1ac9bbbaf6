"""A real Celery worker, started as its own process, consumes our queue."""

import uuid

import pytest

from core.tasks import ping
from tests.workers import celery_worker


@pytest.mark.slow
def test_task_is_executed_by_a_real_worker():
    queue = f"test-{uuid.uuid4().hex[:8]}"  # private queue: no other worker steals our task
    token = uuid.uuid4().hex

    with celery_worker(queue=queue):
        result = ping.apply_async(args=[token], queue=queue)
        assert result.get(timeout=60) == token
