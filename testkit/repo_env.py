"""An orchestrator CLI under test must not be steered by the developer's own `.env`.

src/orchestration/config.py reads the repository's `.env` whatever the environment says (there
is no variable naming another file), and real environment variables win over it, an empty one
meaning "unset". So `hide_repo_dotenv(env)` sets every variable that file holds, and `env` does
not, to the empty string: the CLI then sees its defaults and what the test gave, never the
developer's TRADING_MODE, webhook or credentials. (In this process, tests/conftest.py points the
default `.env` at a file that does not exist instead.)
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from dotenv import dotenv_values

REPO_DOTENV = Path(__file__).resolve().parents[1] / ".env"


def hide_repo_dotenv(env: Mapping[str, str], dotenv: Path = REPO_DOTENV) -> dict[str, str]:
    """`env`, plus NAME="" for every NAME that `dotenv` sets and `env` does not."""
    try:
        names = dotenv_values(dotenv, interpolate=False) if dotenv.is_file() else {}
    except (OSError, UnicodeDecodeError):
        names = {}  # unreadable: the CLI will say so itself
    return {**{name: "" for name in names}, **env}
