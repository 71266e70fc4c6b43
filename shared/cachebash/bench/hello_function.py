"""The coldstart workload's baseline: a bare functions-framework target on the same stack as the
`mcp` function (an async HTTP function, so uvicorn under gunicorn), answering `{}` to everything.
Its start-to-first-200 is what functions-framework costs before CacheBash does anything."""

from __future__ import annotations

from typing import Any

from functions_framework import aio
from starlette.responses import JSONResponse


@aio.http
async def hello(_request: Any) -> JSONResponse:
    return JSONResponse({})
