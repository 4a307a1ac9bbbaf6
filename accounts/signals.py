"""Count failed log-ins and forget them after a successful one (accounts.throttle)."""

from django.contrib.auth.signals import user_logged_in, user_login_failed
from django.dispatch import receiver

from accounts import throttle


@receiver(user_login_failed, dispatch_uid="accounts.throttle.failed")
def count_failed_login(sender, credentials, request=None, **kwargs):
    throttle.record_attempt(throttle.LOGIN, request=request, email=credentials.get("username"))


@receiver(user_logged_in, dispatch_uid="accounts.throttle.succeeded")
def forget_failed_logins(sender, request, user, **kwargs):
    throttle.clear(throttle.LOGIN, email=user.email)
