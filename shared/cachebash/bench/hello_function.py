"""The coldstart workload's baseline: a bare functions-framework target on the same stack as the
`mcp` function (an async HTTP function, so uvicorn under gunicorn), answering `{}` to everything.
Its start-to-first-200 is what functions-framework costs before CacheBash does anything; the
second target's is what importing the Firestore client adds, a floor under the first tools/call."""

from __future__ import annotations

from typing import Any

from functions_framework import aio
from starlette.responses import JSONResponse


@aio.http
async def hello(_request: Any) -> JSONResponse:
    return JSONResponse({})


@aio.http
async def hello_with_firestore(_request: Any) -> JSONResponse:
    """The same, importing the Firestore client library on its first request, as the `mcp`
    function's store does: the least any function on the required stack (`google-cloud-firestore`)
    takes to its first store call, before it makes the call."""
    import google.cloud.firestore  # noqa: F401

    return JSONResponse({})
