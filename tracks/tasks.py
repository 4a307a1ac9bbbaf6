import logging

from celery import shared_task

from tracks import services

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = services.MAX_ATTEMPTS
PROGRESS_STEP = 0.05


@shared_task(bind=True, name="tracks.generate_track", acks_late=True, max_retries=MAX_ATTEMPTS - 1)
def generate_track(self, track_id: int) -> str:
    """Make a queued track's audio. Harmless when run twice: a finished or failed
    track is left alone, and a failure gives the cost back only once.

    Rendering and storing the files are one step: whatever goes wrong in either ends
    in services.fail_generation, now or after the last retry.
    """
    track = services.start_generation(track_id=track_id)
    if track is None:
        return "skipped"
    last = [0.0]

    def on_progress(fraction: float) -> None:
        if fraction - last[0] >= PROGRESS_STEP:
            last[0] = fraction
            services.report_progress(track_id=track_id, fraction=fraction)

    try:
        result = services.render(track, on_progress=on_progress)
        services.finish_generation(track_id=track_id, result=result)
    except ValueError as exc:  # the engine refuses this spec: retrying will not help
        services.fail_generation(track_id=track_id, error=str(exc))
        return "failed"
    except Exception as exc:
        logger.exception("track generation failed", extra={"track_id": track_id})
        if self.request.retries < self.max_retries and track.attempts < MAX_ATTEMPTS:
            raise self.retry(exc=exc, countdown=2**self.request.retries) from exc
        services.fail_generation(track_id=track_id, error=services.GENERATOR_FAILED)
        return "failed"
    return "ready"


@shared_task(name="tracks.fail_stuck_generations")
def fail_stuck_generations() -> int:
    """Every 10 minutes: fail tracks stuck for over 30 minutes, giving their cost back."""
    return services.fail_stuck_generations()
