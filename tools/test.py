"""`make test`: run pytest against PostgreSQL and Redis, embedded ones if none are configured."""

from __future__ import annotations

import os
import subprocess
import sys

from tools.services import backing_services


def main() -> int:
    with backing_services(database="soundstudio", persistent_redis=False) as env:
        result = subprocess.run(
            [sys.executable, "-m", "pytest", *sys.argv[1:]],
            env={**os.environ, **env},
            check=False,
        )
    return result.returncode


if __name__ == "__main__":
    sys.exit(main())
