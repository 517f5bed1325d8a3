"""Where the public benchmark data (shared/data) lives: beside the checkout, as CI lays it out
(`<repo>/../shared/data`), else /work/shared/data, else $GRAMSERVE_SHARED_DATA."""
from __future__ import annotations

import os
from pathlib import Path

_CANDIDATES = [
    os.environ.get("GRAMSERVE_SHARED_DATA", ""),
    str(Path(__file__).resolve().parents[1].parent / "shared" / "data"),
    "/work/shared/data",
]
SHARED_DATA = next((p for p in _CANDIDATES if p and os.path.isdir(p)), _CANDIDATES[1])


def data_path(*parts: str) -> str:
    return os.path.join(SHARED_DATA, *parts)
