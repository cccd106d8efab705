"""The firewall image's third-party packages, unpacked for the image's own Python, offline-ready.

The firewall (src/firewall) validates the plan with the project's own loader, which needs pydantic, and writes its journal with orjson.
The image's base has Python and its standard library only (no pip, and CI's Docker build has no
registry), so the host fetches the wheels instead: exactly the versions and sha256 hashes in
poetry.lock, built for the base image's Python version and this machine's architecture, and unpacks
them into one directory that the Dockerfile copies as is (build/firewall-site/, on PYTHONPATH there).

    python scripts/provision/firewall_site.py PYVER OUTDIR     e.g. 3.11 build/firewall-site

A second run with the same versions is a no-op (OUTDIR/.stamp). Exit 1 with one line on failure.
"""

from __future__ import annotations

import platform
import shutil
import subprocess
import sys
import tempfile
import tomllib
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("pydantic", "pydantic-core", "annotated-types", "typing-extensions", "typing-inspection", "tzdata",
            "orjson")


def requirements(lock: Path) -> list[str]:
    """`name==version --hash=sha256:...` for each package, every hash poetry.lock records for it."""
    locked = {p["name"]: p for p in tomllib.loads(lock.read_text(encoding="utf-8"))["package"]}
    lines = []
    for name in PACKAGES:
        if name not in locked:
            raise SystemExit(f"firewall_site: {name} is not in poetry.lock (it is a dependency of the firewall image)")
        package = locked[name]
        hashes = " ".join(f"--hash={f['hash']}" for f in package.get("files", []))
        lines.append(f"{name}=={package['version']} {hashes}")
    return lines


def main(argv: list[str]) -> int:
    if len(argv) != 2 or not argv[0].replace(".", "").isdigit():
        print("usage: firewall_site.py PYVER OUTDIR (e.g. 3.11 build/firewall-site)", file=sys.stderr)
        return 2
    pyver, out = argv[0], Path(argv[1])
    major, minor = pyver.split(".")[:2]
    arch = platform.machine()
    reqs = requirements(ROOT / "poetry.lock")
    stamp = "\n".join([f"python {major}.{minor} {arch}", *reqs]) + "\n"
    if (out / ".stamp").is_file() and (out / ".stamp").read_text(encoding="utf-8") == stamp:
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        req_file = Path(tmp) / "requirements.txt"
        req_file.write_text("\n".join(reqs) + "\n", encoding="utf-8")
        wheels = Path(tmp) / "wheels"
        platforms = [f"manylinux_2_{v}_{arch}" for v in (17, 28, 31, 34)] + [f"manylinux2014_{arch}"]
        command = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
                   "--require-hashes", "--python-version", f"{major}.{minor}", "--implementation", "cp",
                   "--abi", f"cp{major}{minor}", *(x for p in platforms for x in ("--platform", p)),
                   "-d", str(wheels), "-r", str(req_file)]
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            last = (result.stderr.strip().splitlines() or ["(no output)"])[-1]
            print(f"firewall_site: pip download of {', '.join(PACKAGES)} for Python {major}.{minor} "
                  f"{arch} failed: {last}", file=sys.stderr)
            return 1
        staging = Path(tmp) / "site"
        for wheel in sorted(wheels.glob("*.whl")):
            with zipfile.ZipFile(wheel) as archive:
                archive.extractall(staging)
        shutil.rmtree(out, ignore_errors=True)
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.copytree(staging, out)
    (out / ".stamp").write_text(stamp, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
