class AlreadySubscribed(Exception):
    """The user already has a live Essential subscription (not ended or canceled)."""

    def __init__(self, subscription):
        self.subscription = subscription
        super().__init__(
            f"User {subscription.user_id} already has {subscription.status} Essential."
        )
