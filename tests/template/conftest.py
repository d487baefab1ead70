import sys
from pathlib import Path
from typing import Any

import pytest

# Make the sibling helper module importable whatever pytest's import mode is.
sys.path.insert(0, str(Path(__file__).resolve().parent))

from iam import load_template  # noqa: E402


@pytest.fixture(scope="session")
def template() -> dict[str, Any]:
    return load_template()
