"""Django's AuthenticationMiddleware, letting the user come with the session's query."""

from __future__ import annotations

from django.contrib import auth
from django.contrib.auth.middleware import AuthenticationMiddleware as DjangoAuthentication
from django.utils.functional import SimpleLazyObject

from accounts.backends import request_session


def _get_user(request):
    if not hasattr(request, "_cached_user"):
        with request_session(request.session):
            request._cached_user = auth.get_user(request)
    return request._cached_user


class AuthenticationMiddleware(DjangoAuthentication):
    """request.user as Django's, loaded while accounts.backends can see the request's
    session, so AccountBackend takes the user row read with it (accounts.sessions)."""

    def process_request(self, request):
        super().process_request(request)
        request.user = SimpleLazyObject(lambda: _get_user(request))
