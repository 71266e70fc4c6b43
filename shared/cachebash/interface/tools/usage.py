"""Usage tools: tokens, cost and outcomes, totalled as work happens."""

from __future__ import annotations

from cachebash.domain.usage import GetUsage
from cachebash.interface.tools import ToolSpec, results
from cachebash.services import usage_report

_DESCRIPTION = (
    "Tokens, cost and outcomes for a period (today, 7d, 30d, month, or from_date/to_date): totals and rows "
    "grouped by program, model, provider, project, task type or day, with created, attempts, completed, failed, "
    "dead, cancelled, tokensIn, tokensOut, costUsd and claim-to-finish times (mean, p50, p90); plus the tenant's "
    "plan and its monthly task quota used and remaining. An admin key sees the whole tenant, any other key its "
    "own program's work. Figures are kept as tasks are created, claimed and finished, from what complete_task "
    "reported."
)


def _tool(name: str, description: str, title: str) -> ToolSpec:
    return ToolSpec(name, description, GetUsage, usage_report.get_usage, read_only=True, idempotent=True,
                    output=results.Usage, title=title)


TOOLS = [
    _tool("get_usage", _DESCRIPTION, "See tokens, cost and outcomes"),
    _tool("get_cost_summary", "The same as get_usage (the name other CacheBash servers use). " + _DESCRIPTION,
          "See tokens, cost and outcomes (get_usage)"),
]
