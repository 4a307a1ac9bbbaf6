from django.conf import settings


def site(request):
    """Values every page needs: the test-mode banner flag, Stripe's publishable key."""
    return {
        "stripe_test_mode": settings.STRIPE_TEST_MODE,
        "stripe_publishable_key": settings.STRIPE_PUBLISHABLE_KEY,
    }
