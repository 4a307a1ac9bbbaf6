from django.contrib.auth import get_user_model
from django.http import Http404
from django.shortcuts import render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from accounts.services import set_email_notices
from notices.services import user_id_for_token


# The signed token is the authority here, not a session: mail clients post to this
# address with no cookie (RFC 8058 one-click), so there is no CSRF token to check.
@csrf_exempt
@require_http_methods(["GET", "POST"])
def unsubscribe(request, token: str):
    """GET asks (link scanners open links; they must not unsubscribe anyone), POST does it."""
    user_id = user_id_for_token(token)
    user = get_user_model().objects.filter(pk=user_id).first() if user_id else None
    if user is None:
        raise Http404("This unsubscribe link is not valid.")
    done = request.method == "POST"
    if done:
        set_email_notices(user=user, enabled=False)
    return render(
        request, "notices/unsubscribe.html", {"subscriber": user, "done": done, "token": token}
    )
