"""Reads of the Essential subscription."""


def allowance_remaining(user) -> int:
    """Track generations left this month from the Essential allowance.

    Users have no subscription until the Essential subscription exists, so none.
    """
    return 0


def has_active_subscription(user) -> bool:
    """Whether the user's Essential subscription is active. None exist yet."""
    return False
