"""`python -m scripts.platform.clamav`: the local platform's clamd (its [apps.clamd] table).

Writes the signature directory and clamd.conf from C4A_CLAMD_* (set by
scripts/platform/parts/clamd.py; `scripts/platformctl env clamd` shows them), then becomes
`clamd -c <config>`: same pid, so the supervisor stops clamd itself.
"""

from __future__ import annotations

import os
from pathlib import Path

from scripts.platform.clamav import clamd_binary, clamd_config, prepare_databases


def main() -> None:
    env = os.environ
    databases = Path(env["C4A_CLAMD_DATABASE_DIR"])
    temporary = Path(env["C4A_CLAMD_TEMPORARY_DIR"])
    config = Path(env["C4A_CLAMD_CONFIG"])
    system = env.get("C4A_CLAMD_SYSTEM_DATABASES", "")
    names = prepare_databases(databases, Path(system) if system else None)
    print(f"clamd signatures in {databases}: {', '.join(names)}", flush=True)
    temporary.mkdir(parents=True, exist_ok=True)
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(clamd_config(env.get("C4A_CLAMD_HOST", "127.0.0.1"), int(env["C4A_CLAMD_PORT"]), databases, temporary))
    binary = clamd_binary()
    os.execv(binary, [str(binary), "-c", str(config)])


if __name__ == "__main__":
    main()
