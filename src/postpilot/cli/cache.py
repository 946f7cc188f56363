"""`postpilot cache clear`: empty what is cached, after a rollback or a suspected stale entry."""

from __future__ import annotations

from postpilot.cache.clear import clear_shared
from postpilot.cache.service import CacheService
from postpilot.cli import common, usage

app = usage.group("The caches: clear them.")


@app.command("clear")
def clear() -> None:
    """Clear this process's in-process caches and, with REDIS_URL set, every Redis key under
    REDIS_KEY_PREFIX (never the whole Redis database). Running workers keep their own
    in-process entries until those expire or the worker restarts."""
    settings = common.settings()

    async def go() -> tuple[int, int | None]:
        # This process's own stores only: the shared ones are cleared below, and counted once.
        cache = CacheService.open(settings.model_copy(update={"REDIS_URL": None}))
        local = len(cache.credentials)
        cache.credentials.clear()
        await cache.budgets.clear()
        await cache.close()
        if settings.REDIS_URL is None:
            return local, None
        return local, await clear_shared(settings.REDIS_URL, prefix=settings.REDIS_KEY_PREFIX)

    local, shared = common.run(go())
    say = common.console.print
    say(
        f"cleared {local} in-process entries (running workers drop theirs within "
        f"SCHEDULER_CACHE_TTL={settings.SCHEDULER_CACHE_TTL:g} s, or at restart)",
        highlight=False,
    )
    if shared is None:
        say("no shared cache: REDIS_URL is not set", highlight=False)
    else:
        say(
            f"deleted {shared} Redis keys under {settings.REDIS_KEY_PREFIX!r}",
            highlight=False,
            markup=False,
        )
