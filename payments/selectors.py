from payments.models import Payment


def payment_for_user(user, intent_id: str) -> Payment | None:
    return (
        Payment.objects.select_related("lot", "package")
        .filter(user=user, stripe_payment_intent_id=intent_id)
        .first()
    )
