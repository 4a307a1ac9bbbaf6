"""`make run`: the whole app (web, Celery worker and beat) on http://127.0.0.1:$PORT.

Backing services come from DATABASE_URL / REDIS_URL, or are embedded. Ctrl-C
stops every process this script started.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from tools.services import ROOT, backing_services, log, venv_bin


def main() -> int:
    port = os.environ.get("PORT", "8000")
    with backing_services(database="soundstudio", persistent_redis=True) as services_env:
        env = {
            **os.environ,
            **services_env,
            "DJANGO_SETTINGS_MODULE": os.environ.get(
                "DJANGO_SETTINGS_MODULE", "soundstudio.settings.dev"
            ),
            "PYTHONUNBUFFERED": "1",
            # Where the test gateway delivers its signed events (our own webhook).
            "SITE_URL": os.environ.get("SITE_URL", f"http://127.0.0.1:{port}"),
        }
        manage = [sys.executable, str(ROOT / "manage.py")]
        for step in (
            ["migrate", "--noinput"],
            ["collectstatic", "--noinput", "-v0"],
            ["seed_demo"],
        ):
            subprocess.run([*manage, *step], env=env, cwd=ROOT, check=True)

        commands = {
            "web": [
                venv_bin("gunicorn"),
                "soundstudio.wsgi",
                "--bind",
                f"127.0.0.1:{port}",
                "--workers",
                "2",
                "--threads",
                "4",
                "--access-logfile",
                "-",
            ],
            "worker": [
                venv_bin("celery"),
                "-A",
                "soundstudio",
                "worker",
                "--loglevel=INFO",
                "--concurrency=2",
            ],
            "beat": [venv_bin("celery"), "-A", "soundstudio", "beat", "--loglevel=INFO"],
        }
        processes = {
            name: subprocess.Popen(cmd, env=env, cwd=ROOT, start_new_session=True)
            for name, cmd in commands.items()
        }
        log(f"SoundStudio is up: http://127.0.0.1:{port}/  (Ctrl-C stops everything)")

        stopping = False

        def stop(signum, frame):
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        exit_code = 0
        while not stopping:
            for name, process in processes.items():
                if process.poll() is not None:
                    log(f"{name} exited with {process.returncode}; stopping the rest")
                    exit_code = process.returncode or 1
                    stopping = True
            time.sleep(0.3)

        for process in processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 15
        for process in processes.values():
            try:
                process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
        log("stopped web, worker and beat")
    return exit_code


if __name__ == "__main__":
    sys.exit(main())
