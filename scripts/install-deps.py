"""Install exactly the versions in poetry.lock into .venv, hash-checked, with pip.

Poetry's own installer asks the index for per-version JSON metadata, which not
every network serves (our CI reaches the index through its simple API only).
pip needs only the simple API, so this installs the same locked set, with the
same hashes, the way pip can. Standard library only: it runs before any
dependency exists. Usage: python3 scripts/install-deps.py [--no-dev] [--with GROUP]
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import tomllib
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv"


def requirements(lock: dict, groups: set[str]) -> list[str]:
    """One hash-pinned requirement line per locked package in the given groups."""
    lines = []
    for pkg in lock["package"]:
        if not groups & set(pkg.get("groups", ["main"])):
            continue
        marker = pkg.get("markers")
        if isinstance(marker, dict):  # per-group markers: any wanted group's marker
            wanted = [f"({m})" for g, m in marker.items() if g in groups]
            marker = " or ".join(wanted) if wanted else None
        line = f"{pkg['name']}=={pkg['version']}"
        if marker:
            line += f" ; {marker}"
        hashes = " ".join(f"--hash={f['hash']}" for f in pkg.get("files", []))
        lines.append(f"{line} {hashes}".strip())
    return lines


def main(argv: list[str]) -> int:
    groups = {"main"} if "--no-dev" in argv else {"main", "dev"}
    groups |= {argv[i + 1] for i, arg in enumerate(argv[:-1]) if arg == "--with"}
    lock = tomllib.loads((ROOT / "poetry.lock").read_text())
    if not (VENV / "bin" / "python").exists():
        venv.create(VENV, with_pip=True)
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as req:
        req.write("\n".join(requirements(lock, groups)) + "\n")
    cmd = [str(VENV / "bin" / "python"), "-m", "pip", "install", "--quiet",
           "--require-hashes", "--no-deps", "-r", req.name]
    result = subprocess.run(cmd, check=False)
    Path(req.name).unlink()
    if result.returncode != 0:
        print("install-deps: pip could not install the locked dependencies (see above)",
              file=sys.stderr)
    return result.returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
