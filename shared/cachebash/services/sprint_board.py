"""The person's list of sprints, newest first, each with its progress (one stories query per
sprint: the same view `get_sprint` gives an agent, summarised)."""

from __future__ import annotations

from typing import Any

from cachebash.domain.sprint_report import counts, percent, public_sprint, story_view
from cachebash.domain.sprints import StoryState
from cachebash.ports.store import Query
from cachebash.services.runtime import Runtime, tenant_path
from cachebash.services.sprint_flow import stories_query

SPRINT_LIST_LIMIT = 50


def sprints(rt: Runtime, tenant_id: str) -> dict[str, Any]:
    query = Query(tenant_path(tenant_id, "sprints")).order("createdAt", descending=True).take(SPRINT_LIST_LIMIT)
    rows = []
    for doc in rt.store.query(query):
        stories = [d.data for d in rt.store.query(stories_query(tenant_id, doc.id))]
        states = {s["storyId"]: StoryState.of(s) for s in stories}
        views = [story_view(s, None, states) for s in stories]
        rows.append({**public_sprint(doc.data), "progress": percent(views), "counts": counts(views)})
    return {"success": True, "sprints": rows}
