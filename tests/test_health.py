import pytest


@pytest.mark.django_db
def test_healthz_ok_when_database_and_redis_are_up(client):
    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"database": "ok", "redis": "ok"}


@pytest.mark.django_db
def test_healthz_503_naming_redis_when_redis_is_down(client, settings):
    from tools.services import free_port

    settings.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there

    response = client.get("/healthz")

    assert response.status_code == 503
    body = response.json()
    assert body["database"] == "ok"
    assert body["redis"].startswith("error")


def test_ping_answers_without_backing_services(client, settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    response = client.get("/ping")
    assert response.status_code == 200
    assert response.content == b"ok"


@pytest.mark.django_db
def test_api_csrf_failure_is_json_in_the_api_error_shape(user):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(user)

    response = client.post("/api/tracks/generate", data="{}", content_type="application/json")

    assert response.status_code == 403
    assert response.json()["error"] == "csrf_failed"
