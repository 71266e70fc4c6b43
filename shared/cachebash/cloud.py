"""What `functions/main.py` calls: one small function per Cloud Function target.

Clients (the store, Pub/Sub, Firebase) are created on the first invocation of an instance,
never at import, and each target imports only what it uses, to keep cold starts short.
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING, Any

from cachebash.interface.health import PATH as HEALTH_PATH
from cachebash.interface.health import health_body

if TYPE_CHECKING:
    from cachebash.ports.clock import Clock
    from cachebash.ports.identity import IdTokenVerifier
    from cachebash.services.runtime import Runtime


_runtime: Runtime | None = None


def runtime(clock: Clock | None = None) -> Runtime:
    """The instance's runtime, built on first use. A test passes its own clock (the runtime is
    then rebuilt with it), so leases lapse when the test says, not after a sleep."""
    global _runtime
    if _runtime is None or (clock is not None and _runtime.clock is not clock):
        from cachebash.bootstrap import cloud_runtime

        _runtime = cloud_runtime(clock=clock)
        _configure_logs()
    return _runtime


def _configure_logs() -> None:
    from cachebash import logs
    from cachebash.config import Settings

    settings = Settings.from_env()
    logs.configure(settings.log_level, settings.log_json)


def reset() -> None:
    """Forget the instance's runtime and verifier (tests change the environment between them)."""
    global _runtime
    _runtime = None
    verifier.cache_clear()
    mcp_function.cache_clear()


@cache
def verifier() -> IdTokenVerifier:
    from cachebash.adapters.firebase_auth import FirebaseVerifier
    from cachebash.config import Settings

    # firebase-admin accepts the Auth emulator's unsigned tokens whenever it is configured, so
    # anyone could sign in as anyone: only ever on a demo project (the emulator's convention).
    settings = Settings.from_env()
    project = settings.firestore_project or ""
    if settings.auth_emulator and not project.startswith("demo-"):
        raise RuntimeError("FIREBASE_AUTH_EMULATOR_HOST is set on project "
                           f"'{project}': emulator sign-in is allowed only on 'demo-' projects")
    return FirebaseVerifier()


def on_pubsub(function: str, cloud_event: Any) -> str:
    """A Pub/Sub-triggered function: runs the handlers of the events `function` consumes (the
    catalogue, `services/events.py`, says which) and refuses any other."""
    from cachebash.interface.cloud_events import dispatch_pubsub

    return dispatch_pubsub(runtime(), function, cloud_event)


def on_answer_created(cloud_event: Any) -> bool:
    """The phone app created an answer (`tenants/{t}/answers/{question}`): apply it to its question.
    Raises for a retry when applying fails; the sweeper applies it if every retry fails."""
    import logging

    from cachebash.interface.cloud_events import PoisonMessage, answer_created
    from cachebash.services.app_answers import apply

    try:
        where = answer_created(cloud_event)
    except PoisonMessage as exc:
        logging.getLogger(__name__).error("%s; acknowledged without retry", exc)
        return False
    return where is not None and apply(runtime(), *where) is not None


def _mobile(endpoint_name: str, request: Any) -> tuple[dict[str, Any], int, dict[str, str]]:
    from cachebash.interface import mobile_api, owner_api

    endpoint = getattr(mobile_api, endpoint_name)
    reply = endpoint(runtime(), verifier(), mobile_api.Request(
        method=request.method, path=request.path, authorization=request.headers.get("Authorization"),
        body=request.get_data(),
    ))
    return reply.body, reply.status, owner_api.headers(reply)


@cache
def mcp_function() -> Any:
    """The MCP endpoint as served by `cachebash serve`, built on the instance's first request."""
    from cachebash.asgi_function import AsgiFunction

    def build() -> tuple[Any, Any]:
        from cachebash.config import Settings
        from cachebash.interface.console_config import ConsoleConfig
        from cachebash.interface.http_app import build_app
        from cachebash.interface.owner_auth import FirebaseAuth

        settings = Settings.from_env()
        console = ConsoleConfig(firebase=settings.firebase_web or _default_firebase_web(settings),
                                auth_emulator=settings.auth_emulator, vapid_key=settings.vapid_key)
        app = build_app(runtime(), host="0.0.0.0", owner_auth=FirebaseAuth(verifier()), console=console,
                        settings=settings, sdk_when_needed=True)
        return app, app.app  # ApiKeyAuth around our Starlette app (whose lifespan must run)

    return AsgiFunction(build)


def _default_firebase_web(settings: Any) -> dict[str, str] | None:
    """Without a web app config, the project id alone is enough for the Auth emulator (which
    takes any API key); a real deployment sets CACHEBASH_FIREBASE_CONFIG (`cachebash deploy`)."""
    project = settings.firestore_project
    if not project or not settings.auth_emulator:
        return None
    return {"apiKey": "emulator-only", "projectId": project, "authDomain": f"{project}.firebaseapp.com"}


async def on_mcp(request: Any) -> Any:
    function = mcp_function()
    if not function.built and request.method == "GET" and request.url.path == HEALTH_PATH:
        # A cold instance's probe: answered before the app (store client, MCP tools) is built.
        from starlette.responses import JSONResponse

        return JSONResponse(health_body(_runtime))
    return await function(request)


def on_keys(request: Any) -> tuple[dict[str, Any], int, dict[str, str]]:
    return _mobile("keys_endpoint", request)


def on_replies(request: Any) -> tuple[dict[str, Any], int, dict[str, str]]:
    return _mobile("replies_endpoint", request)
