"""tools/secret_scan.py: CI fails on a committed Stripe key, webhook secret or private key.

The planted values are built at run time, so this file holds none itself.
"""

import secrets
import string
import subprocess
import sys
from pathlib import Path

import pytest

from tools import secret_scan

ROOT = Path(__file__).resolve().parent.parent


def token(n=24) -> str:
    return "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(n))


PLANTED = {
    "live secret key": "sk_" + "live_" + token(),
    "test secret key": "sk_" + "test_" + token(),
    "restricted key": "rk_" + "live_" + token(),
    "webhook secret": "whsec_" + token(32),
    "private key": "-----BEGIN " + "RSA PRIVATE KEY-----\nMIIEow" + token(40),
    "openssh key": "-----BEGIN " + "OPENSSH PRIVATE KEY-----\nb3Blbn" + token(40),
}


class Repo(type(Path())):
    """A throwaway git repository (a Path, with a git() helper)."""

    def git(self, *args):
        subprocess.run(["git", *args], cwd=self, check=True, capture_output=True)


@pytest.fixture
def repo(tmp_path):
    tmp_path = Repo(tmp_path)
    git = tmp_path.git
    git("init", "-q")
    git("config", "user.email", "ci@example.com")
    git("config", "user.name", "CI")
    (tmp_path / "README.md").write_text("Set STRIPE_SECRET_KEY (sk_live_...) in the environment.\n")
    (tmp_path / "app.py").write_text("KEY = env('STRIPE_SECRET_KEY')  # never a whsec_ literal\n")
    git("add", ".")
    git("commit", "-q", "-m", "clean")
    return tmp_path


def scan(path: Path):
    return subprocess.run(
        [sys.executable, "-m", "tools.secret_scan", str(path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )


def test_a_clean_repository_passes(repo):
    result = scan(repo)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "no secrets found" in result.stdout


@pytest.mark.parametrize("kind", sorted(PLANTED))
def test_a_committed_secret_fails_the_scan_without_being_printed(repo, kind):
    value = PLANTED[kind]
    (repo / "settings.py").write_text(f"import os\n\nVALUE = '''{value}'''\n")
    repo.git("add", "settings.py")
    repo.git("commit", "-q", "-m", "oops")

    result = scan(repo)

    assert result.returncode == 1
    assert "settings.py:3:" in result.stdout
    assert value not in result.stdout + result.stderr
    assert value.splitlines()[-1] not in result.stdout + result.stderr


def test_a_new_untracked_file_is_scanned_but_an_ignored_one_is_not(repo):
    (repo / ".gitignore").write_text("local.env\n")
    (repo / "local.env").write_text(f"STRIPE_SECRET_KEY={PLANTED['live secret key']}\n")
    assert scan(repo).returncode == 0

    (repo / "notes.txt").write_text(f"webhook: {PLANTED['webhook secret']}\n")
    result = scan(repo)
    assert result.returncode == 1 and "notes.txt:1:" in result.stdout


def test_only_an_explicit_marker_allows_a_fake_fixture(repo):
    fake = "sk_" + "test_" + "localstripe"
    (repo / "test_fixture.py").write_text(f'API_KEY = "{fake}"\n')
    repo.git("add", ".")
    assert scan(repo).returncode == 1

    (repo / "test_fixture.py").write_text(f'API_KEY = "{fake}"  # {secret_scan.ALLOW_MARKER}\n')
    assert scan(repo).returncode == 0


def test_binary_files_are_skipped(repo):
    (repo / "audio.mp3").write_bytes(b"ID3\x00" + PLANTED["live secret key"].encode())
    repo.git("add", ".")
    assert scan(repo).returncode == 0


def test_the_real_tree_has_no_secrets():
    result = scan(ROOT)

    assert result.returncode == 0, result.stdout + result.stderr
