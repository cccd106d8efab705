"""Regenerate poetry.lock where the index only serves the simple API.

Poetry resolves PyPI packages through PyPI's per-version JSON API. Some
networks (our CI among them) reach the package index only through its simple
API, so `poetry lock` fails there. This script locks a temporary copy of the
project with the index pip is configured with declared as a simple-API
source, then writes the lock back without that source and with the content
hash of the real pyproject.toml, so `poetry check --lock` stays green.
Run it with the Python that has Poetry installed: `python3 scripts/lock.py`.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def index_url() -> str:
    """The index pip uses here: its configured one, else its built-in default."""
    out = subprocess.run(
        [sys.executable, "-m", "pip", "config", "get", "global.index-url"],
        capture_output=True, text=True, check=False,
    ).stdout.strip()
    if out:
        return out
    from pip._internal.models.index import PyPI  # pip's own default index

    return PyPI.simple_url


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        text = (ROOT / "pyproject.toml").read_text()
        text += (
            '\n[[tool.poetry.source]]\nname = "index"\n'
            f'url = "{index_url()}"\npriority = "primary"\n'
        )
        (work / "pyproject.toml").write_text(text)
        shutil.copy(ROOT / "README.md", work / "README.md")
        if (ROOT / "poetry.lock").exists():  # keep today's pins: adding a package upgrades nothing else
            shutil.copy(ROOT / "poetry.lock", work / "poetry.lock")
        subprocess.run(["poetry", "lock"], cwd=work, check=True)
        lock = (work / "poetry.lock").read_text()

    lock = re.sub(r"\n\[package\.source\]\n(?:[a-z]+ = .*\n)+", "\n", lock)
    from poetry.packages.locker import Locker

    data = tomllib.loads((ROOT / "pyproject.toml").read_text())
    content_hash = Locker(ROOT / "poetry.lock", data)._get_content_hash()
    lock = re.sub(r'content-hash = "[0-9a-f]+"', f'content-hash = "{content_hash}"', lock)
    (ROOT / "poetry.lock").write_text(lock)
    print("poetry.lock written")
    return 0


if __name__ == "__main__":
    sys.exit(main())
