"""`postpilot demo`: see posts go out within a minute, on SQLite, against the sandbox."""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path

import typer
import uvicorn
from rich.markup import escape

from postpilot.api.app import create_app
from postpilot.cli import common, ports, usage
from postpilot.core.durations import InvalidDuration, parse_duration
from postpilot.core.states import DeliveryStatus
from postpilot.runtime import open_database, open_runtime
from postpilot.sandbox.process import start_sandbox
from postpilot.scheduler.summary import PassReport
from postpilot.settings import Settings
from postpilot.store import schema
from postpilot.tools import demo

app = usage.group("Demo data and a one-command demo against the sandbox.")

ENV_LOCAL = Path(".env.local")


def ensure_local_secrets() -> list[str]:
    """Give a fresh checkout a SECRET_KEY and CRON_SECRET in .env.local (never overwritten)."""
    existing = ENV_LOCAL.read_text() if ENV_LOCAL.exists() else ""
    added = []
    for name in ("SECRET_KEY", "CRON_SECRET"):
        if f"{name}=" not in existing:
            existing += f"{name}={secrets.token_urlsafe(32)}\n"
            added.append(name)
    if added:
        ENV_LOCAL.write_text(existing)
        ENV_LOCAL.chmod(0o600)
    return added


@app.command("run")
def run(
    port: int = typer.Option(8000, help="API port."),
    sandbox_port: int = typer.Option(8765, help="Sandbox port."),
    posts: int = typer.Option(6, min=1, max=1000, help="How many demo posts to schedule."),
) -> None:
    """Start the sandbox, the API and the worker on SQLite, schedule demo posts over the next
    half minute, and print each one as it is published. Ctrl-C stops everything."""
    ports.ensure_free(port, flag="--port")
    ports.ensure_free(sandbox_port, flag="--sandbox-port")
    added = ensure_local_secrets()
    sandbox = start_sandbox(sandbox_port)
    try:
        settings = common.settings(
            SANDBOX_URL=sandbox.url,
            MEDIA_ALLOWED_HOSTS=f"127.0.0.1:{sandbox_port}",
            LOG_LEVEL="WARNING",
            LOG_FORMAT="text",
        )
        common.run(_serve(settings, sandbox.url, port, posts, added))
    except KeyboardInterrupt:
        pass
    finally:
        sandbox.stop()


async def _serve(
    settings: Settings, sandbox_url: str, port: int, count: int, added: list[str]
) -> None:
    async with open_runtime(settings, check_schema=False) as runtime:
        await schema.upgrade(runtime.db)
        await demo.connect_accounts(runtime, sandbox_url=sandbox_url)
        now = runtime.now()
        seeded = await demo.seed(
            runtime.db,
            runtime.cipher,
            sandbox_url=sandbox_url,
            count=count,
            start=now + timedelta(seconds=5),
            spread=timedelta(seconds=30),
            now=now,
        )
        key = await demo.new_api_key(runtime.db, workspace_id=seeded.workspace_id)
        password = await demo.demo_owner(
            runtime.db, workspace_id=seeded.workspace_id, now=runtime.now()
        )
        runtime.observers.append(_printer(demo.Outcomes(seeded)))
        base = f"http://127.0.0.1:{port}"
        say = common.console.print
        say("[bold]postpilot demo[/bold] on " + runtime.db.engine.url.render_as_string())
        if added:
            say(f"  wrote {', '.join(added)} to .env.local (keep it: it decrypts stored tokens)")
        say(f"  web app:         {base}/  (sign in as {demo.DEMO_OWNER} / {password})")
        say(f"  API docs:        {base}/docs")
        say(f"  demo API key:    {key}", highlight=False)
        say(
            f"  try:             curl -H 'Authorization: Bearer {key}' {base}/api/v1/posts",
            highlight=False,
        )
        say(f"  sandbox records: {sandbox_url}/_sandbox/records")
        say(
            f"  {count} posts ({seeded.deliveries} deliveries) to {len(seeded.account_ids)} "
            f"sandbox accounts on {', '.join(seeded.platforms)} are due in the next 35 s."
        )
        say("  Published posts appear below. Ctrl-C stops.\n")
        server = uvicorn.Server(
            uvicorn.Config(
                create_app(settings, runtime=runtime, with_worker=True),
                host="127.0.0.1",
                port=port,
                log_level="warning",
                log_config=None,
            )
        )
        await server.serve()


def _printer(outcomes: demo.Outcomes) -> Callable[[PassReport], Awaitable[None]]:
    """A pass observer that prints each demo post once, when all its deliveries have ended."""

    async def print_settled(report: PassReport) -> None:
        for post in outcomes.add(report.decisions):
            for line in post_lines(post):
                common.console.print(line, highlight=False)

    return print_settled


def post_lines(post: demo.Settled) -> list[str]:
    """The post's text once, then one line per account: its link, or why it has none."""
    names = [f"{t.platform} {t.handle}".rstrip() for t in post.targets]
    width = max(len(name) for name in names)
    published = sum(t.status is DeliveryStatus.PUBLISHED for t in post.targets)
    if published == len(post.targets):
        mark = "[green]published[/green]"
    elif published:
        mark = f"[yellow]published to {published} of {len(post.targets)}[/yellow]"
    else:
        mark = "[red]not published[/red]"
    lines = [f"  {mark} {escape(repr(post.text))}"]
    for name, target in zip(names, post.targets, strict=True):
        where = escape(f"{name:<{width}}")
        if target.status is DeliveryStatus.PUBLISHED:
            lines.append(f"    {where}  {escape(target.link or '(no link)')}")
        else:
            status = f"[red]{target.status}[/red]"
            lines.append(f"    {where}  {status}: {escape(target.detail)}")
    return lines


@app.command("seed")
def seed(
    posts: int = typer.Option(..., "--posts", help="How many posts (1-10000)."),
    spread: str = typer.Option("1m", help="Due times spread evenly over this span: 0s, 1m, 2h."),
    start_in: str = typer.Option("0s", help="The first post is due this long from now."),
    sandbox_url: str | None = typer.Option(
        None, help="The sandbox the demo accounts publish to (default: SANDBOX_URL, else :8765)."
    ),
) -> None:
    """Create realistic test posts (source=demo) to sandbox accounts on Mastodon, X and Bluesky
    (connected through their flows on the sandbox), for rehearsing a migration; `postpilot demo
    clean` removes exactly them."""
    if not 1 <= posts <= demo.MAX_POSTS:
        common.fail(f"--posts must be between 1 and {demo.MAX_POSTS} (got {posts})")
    try:
        span = timedelta(seconds=parse_duration(spread))
        offset = timedelta(seconds=parse_duration(start_in))
    except InvalidDuration as exc:
        common.fail(str(exc))
    url = (sandbox_url or common.settings().SANDBOX_URL or "http://127.0.0.1:8765").rstrip("/")
    if not url.startswith(("http://", "https://")):
        common.fail(f"--sandbox-url must be an http(s) URL (got {url!r})")
    settings = common.settings(SANDBOX_URL=url)  # the demo's accounts connect through it

    async def go() -> demo.Seeded:
        async with open_runtime(settings) as runtime:
            await demo.connect_accounts(runtime, sandbox_url=url)
            now = runtime.now()
            return await demo.seed(
                runtime.db,
                runtime.cipher,
                sandbox_url=url,
                count=posts,
                start=now + offset,
                spread=span,
                now=now,
            )

    seeded = common.run(go())
    common.console.print(
        f"seeded {len(seeded.post_ids)} posts ({seeded.deliveries} deliveries) to "
        f"{len(seeded.account_ids)} sandbox accounts in workspace {seeded.workspace_id}, due "
        f"{seeded.first_due:%H:%M:%S} to {seeded.last_due:%H:%M:%S} UTC; they publish to {url}",
        highlight=False,
    )


@app.command("clean")
def clean() -> None:
    """Remove the demo posts (source=demo) with their deliveries and activity, the demo accounts
    no other post targets, and the demo workspace once empty. Nothing else."""
    settings = common.settings()

    async def go() -> demo.Cleaned:
        async with open_database(settings) as db:
            return await demo.clean(db)

    cleaned = common.run(go())
    common.console.print(
        f"removed {cleaned.posts} demo posts, {cleaned.deliveries} deliveries, "
        f"{cleaned.activity} activity entries, {cleaned.accounts} demo accounts, "
        f"{cleaned.workspaces} demo workspace(s)",
        highlight=False,
    )
    for account in cleaned.kept_accounts:
        common.console.print(f"kept demo account {account}: a non-demo post targets it")
