from celery import shared_task


@shared_task(name="accounts.clear_sessions")
def clear_sessions() -> int:
    """Daily: delete expired sessions (accounts.sessions keeps them in PostgreSQL).
    A session past its expiry is never read, so running this twice, or late, is safe."""
    from accounts.sessions import SessionStore

    return SessionStore.clear_expired()
