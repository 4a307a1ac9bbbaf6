class CreditsError(Exception):
    """Base class for credit ledger errors."""


class InsufficientCredits(CreditsError):
    """The balance cannot cover a spend; nothing was changed."""

    def __init__(self, *, requested: int, available: int):
        self.requested = requested
        self.available = available
        super().__init__(f"Needs {requested} credit(s), {available} available.")


class AlreadyRefunded(CreditsError):
    """The spend was already given back."""


class IdempotencyConflict(CreditsError, ValueError):
    """The idempotency key was already used for a different change (another user,
    kind or amount); nothing was changed."""
