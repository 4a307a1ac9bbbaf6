from django.conf import settings


def site(request):
    """Values every page needs: the test-mode banner flag."""
    return {"stripe_test_mode": settings.STRIPE_TEST_MODE}
