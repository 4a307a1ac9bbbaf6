import logging

from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from webhooks import services
from webhooks.models import EventStatus
from webhooks.secrets import webhook_secrets
from webhooks.signature import SignatureError, verify

logger = logging.getLogger(__name__)


@csrf_exempt
@require_POST
def stripe_webhook(request):
    """Verify, record, dedupe and apply one Stripe event (DESIGN.md section 2)."""
    try:
        event = verify(request.body, request.headers.get("Stripe-Signature", ""), webhook_secrets())
    except SignatureError as exc:
        logger.warning("webhook rejected", extra={"reason": str(exc)})
        return JsonResponse({"error": "invalid_signature", "message": str(exc)}, status=400)
    if not isinstance(event, dict) or not isinstance(event.get("id"), str):
        return JsonResponse({"error": "invalid_event", "message": "No event id."}, status=400)
    stored = services.receive(event)
    if stored.status == EventStatus.FAILED:
        return JsonResponse({"status": "failed"}, status=500)
    return JsonResponse({"status": stored.status})
