"""Every registered model through the one battery (`cinerec.testing.battery`).

One test class per registered name, generated here, so a new registration is checked
without editing this file; a model whose import fails fails its class.
"""

from __future__ import annotations

from cinerec.models.registry import available_models
from cinerec.testing.battery import ModelChecks


def _class_name(model: str) -> str:
    return "Test_" + model.replace("-", "_")


for _name in available_models():
    globals()[_class_name(_name)] = type(_class_name(_name), (ModelChecks,), {"model_name": _name})
