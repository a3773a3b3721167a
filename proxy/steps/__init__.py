"""The relay's steps, one small module each; ``message_steps`` is the pipeline's order."""

from __future__ import annotations

from ..pipeline import Step
from .line_endings import check_line_endings
from .plan import plan_recipients
from .versions import split_versions


def message_steps() -> list[Step]:
    return [
        Step("check-line-endings", check_line_endings),
        Step("plan-recipients", plan_recipients),
        Step("split-versions", split_versions),
    ]
