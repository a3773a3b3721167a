"""The relay's steps, one small module each; ``message_steps`` is the pipeline's order."""

from __future__ import annotations

from proxy.relay.pipeline import Step
from proxy.relay.steps.footer import add_footer
from proxy.relay.steps.line_endings import check_line_endings
from proxy.relay.steps.plan import plan_recipients
from proxy.relay.steps.several import address_individually, check_several_recipients
from proxy.relay.steps.signed import check_signed
from proxy.relay.steps.trackers import remove_read_receipts, remove_trackers
from proxy.relay.steps.unsubscribe import add_list_unsubscribe
from proxy.relay.steps.versions import split_versions


def message_steps() -> list[Step]:
    return [
        Step("check-line-endings", check_line_endings),
        Step("check-signed", check_signed),
        Step("plan-recipients", plan_recipients),
        Step("check-several-recipients", check_several_recipients),
        Step("split-versions", split_versions),
        Step("add-list-unsubscribe", add_list_unsubscribe),  # after the split: one signed link per person
        Step("address-individually", address_individually),
        Step("add-footer", add_footer),
        Step("remove-trackers", remove_trackers),
        Step("remove-read-receipts", remove_read_receipts),
    ]
