"""The tenant's plan on the owner API: `GET /v1/owner/plan` (the plan, its limits and what is
used of them) for every owner; `PUT /v1/owner/plan` only where the owner is the operator
(embedded). In the cloud a plan is what the tenant pays for, so the console's owner reads it and
the operator changes it (`cachebash plan set --tenant T` on the project's Firestore)."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from cachebash.domain.errors import Forbidden
from cachebash.domain.inputs import Input, parse
from cachebash.domain.plans import PRESETS
from cachebash.services import plans, quota
from cachebash.services.runtime import Runtime


class PlanChange(Input):
    plan: str | None = Field(None, description=f"A preset: {', '.join(PRESETS)}; left out, the preset stays.")
    overrides: dict[str, int | None] = Field(default_factory=dict,
                                             description="Limits to set (null: unlimited), by field name.")
    clear: bool = Field(False, description="Drop every earlier override first.")


def show(rt: Runtime, tenant_id: str) -> dict[str, Any]:
    plan = plans.plan_of(rt, tenant_id)
    stored = rt.store.get(plans.plan_path(tenant_id)) or {}
    return {"success": True, "tenantId": tenant_id, "plan": plan.to_dict(),
            "overrides": dict(stored.get("overrides") or {}), "default": not stored,
            "usage": quota.usage(rt, tenant_id), "ownerMayChange": rt.owner_sets_plan}


def change(rt: Runtime, tenant_id: str, body: dict[str, Any]) -> dict[str, Any]:
    if not rt.owner_sets_plan:
        raise Forbidden("plan: in the cloud the plan is set by the operator of this deployment "
                        "(`cachebash plan set`), not from the console", field="plan")
    cmd = parse(PlanChange, body)
    plans.set_plan(rt, tenant_id, name=cmd.plan, overrides=dict(cmd.overrides), clear=cmd.clear, by="owner")
    return show(rt, tenant_id)
