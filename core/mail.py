"""Every e-mail SoundStudio sends goes out through `send`, in two parts: plain text and
HTML, rendered from `<template>.txt` and `<template>.html`.

Call it from a Celery task only (queued with transaction.on_commit), never from a
request: a slow or failing mail server must not hold a page or a webhook. The
backend comes from EMAIL_URL (settings): the console in development.
"""

from __future__ import annotations

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string


def absolute(path: str) -> str:
    """A link for an e-mail: the site's address and `path`."""
    return settings.SITE_URL.rstrip("/") + path


def send(*, to: str, subject: str, template: str, context: dict, unsubscribe_url: str = "") -> None:
    """Render and send one e-mail to `to`.

    Notices pass `unsubscribe_url` (a signed one-click link): it is offered in the
    footer and in the List-Unsubscribe headers mail clients show as a button
    (RFC 8058). Receipts pass none: they are sent whatever the user's setting.
    """
    context = {
        **context,
        "subject": subject,
        "site_url": settings.SITE_URL.rstrip("/"),
        "unsubscribe_url": unsubscribe_url,
    }
    text = render_to_string(f"{template}.txt", context)
    html = render_to_string(f"{template}.html", context)
    headers = {}
    if unsubscribe_url:
        headers["List-Unsubscribe"] = f"<{unsubscribe_url}>"
        headers["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    message = EmailMultiAlternatives(subject, text, None, [to], headers=headers)
    message.attach_alternative(html, "text/html")
    message.send()
