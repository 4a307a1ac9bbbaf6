"""Artist pages follow their account: any save of a user that can change what their
page shows (active or not, name, slug) invalidates its cached copies after commit."""

from django.db.models.signals import post_save
from django.dispatch import receiver

from accounts.models import User
from tracks import catalog

# Saves that change nothing an artist page shows (a log-in writes last_login).
_IRRELEVANT = frozenset({"last_login", "password", "email_notices"})


@receiver(post_save, sender=User, dispatch_uid="tracks.artist_page_follows_account")
def artist_account_saved(sender, instance: User, created: bool, update_fields=None, **kwargs):
    if created or (update_fields is not None and set(update_fields) <= _IRRELEVANT):
        return
    if instance.slug:
        catalog.changed(instance.slug)
