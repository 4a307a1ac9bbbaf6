"""System checks of our own (run by `manage.py check`)."""

from django.conf import settings
from django.core.checks import Error, Tags, register


@register(Tags.security, deploy=True)
def stripe_test_mode_requested(app_configs, **kwargs) -> list[Error]:
    """A deployment runs the test gateway only when STRIPE_TEST_MODE=true says so."""
    test_mode = settings.STRIPE_TEST_MODE or not settings.STRIPE_SECRET_KEY
    if test_mode and not getattr(settings, "STRIPE_TEST_MODE_REQUESTED", False):
        return [
            Error(
                "STRIPE_SECRET_KEY is not set, so the built-in test gateway would hand out "
                "credits and Essential for free.",
                hint="Set STRIPE_SECRET_KEY, or STRIPE_TEST_MODE=true for test mode on purpose.",
                id="soundstudio.E001",
            )
        ]
    return []
