import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "soundstudio.settings.dev")

application = get_wsgi_application()

from core.heap import freeze_after_startup  # noqa: E402 - needs the app loaded

freeze_after_startup()
