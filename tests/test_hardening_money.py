"""Hardening (issue 12), the money side: test mode only when asked for, ..."""

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.checks import Error

ROOT = Path(__file__).resolve().parent.parent


def _run(code_or_args: list[str], **env_overrides: str) -> subprocess.CompletedProcess:
    """Run Python with a clean Stripe environment plus `env_overrides`."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("STRIPE_") and k != "DJANGO_SETTINGS_MODULE"
    }
    env.update(
        SECRET_KEY=secrets.token_urlsafe(50),
        ALLOWED_HOSTS="soundstudio.example.com",
        **env_overrides,
    )
    return subprocess.run(
        [sys.executable, *code_or_args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


IMPORT_PRODUCTION = ["-c", "import soundstudio.settings.production"]


# --- 1. Production never falls into the test gateway by a forgotten key ---------------


def test_production_settings_refuse_test_mode_without_the_explicit_switch():
    result = _run(IMPORT_PRODUCTION)
    assert result.returncode != 0
    assert "STRIPE_TEST_MODE" in result.stderr


def test_production_settings_start_in_test_mode_when_asked_for_by_name():
    assert _run(IMPORT_PRODUCTION, STRIPE_TEST_MODE="true").returncode == 0


def test_production_settings_start_with_a_stripe_key():
    assert _run(IMPORT_PRODUCTION, STRIPE_SECRET_KEY="sk_test_dummy").returncode == 0


def test_production_settings_refuse_test_mode_when_the_switch_says_false():
    assert _run(IMPORT_PRODUCTION, STRIPE_TEST_MODE="false").returncode != 0


def test_deploy_check_fails_in_test_mode_unless_asked_for():
    args = ["manage.py", "check", "--deploy"]
    refused = _run(args, DJANGO_SETTINGS_MODULE="soundstudio.settings.test")
    assert refused.returncode != 0
    assert "soundstudio.E001" in refused.stderr

    allowed = _run(
        args, DJANGO_SETTINGS_MODULE="soundstudio.settings.test", STRIPE_TEST_MODE="true"
    )
    assert allowed.returncode == 0, allowed.stderr


def test_deploy_check_as_ci_runs_it_passes_with_the_explicit_switch():
    result = _run(
        ["manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        DJANGO_SETTINGS_MODULE="soundstudio.settings.production",
        STRIPE_TEST_MODE="true",
    )
    assert result.returncode == 0, result.stderr


def test_deploy_check_function(settings):
    from core.checks import stripe_test_mode_requested

    settings.STRIPE_SECRET_KEY = ""
    settings.STRIPE_TEST_MODE = True
    settings.STRIPE_TEST_MODE_REQUESTED = False
    [error] = stripe_test_mode_requested(app_configs=None)
    assert isinstance(error, Error)
    assert error.id == "soundstudio.E001"

    settings.STRIPE_TEST_MODE_REQUESTED = True
    assert stripe_test_mode_requested(app_configs=None) == []

    settings.STRIPE_TEST_MODE_REQUESTED = False
    settings.STRIPE_SECRET_KEY = "sk_live_dummy"
    settings.STRIPE_TEST_MODE = False
    assert stripe_test_mode_requested(app_configs=None) == []


def test_deploy_check_is_not_run_by_a_plain_check():
    assert (
        _run(["manage.py", "check"], DJANGO_SETTINGS_MODULE="soundstudio.settings.test").returncode
        == 0
    )


pytestmark = [pytest.mark.filterwarnings("ignore")]
