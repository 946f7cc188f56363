"""`postpilot accounts`: connect an account from a terminal (the platform's consent page in any
browser, then the redirect URL pasted back; or the direct inputs typed, secrets hidden), list a
workspace's accounts with their token expiry, and check them live."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar
from urllib.parse import parse_qs, urlsplit

import typer
from rich.markup import escape

from postpilot.cli import common, usage
from postpilot.cli.workspace import _actor
from postpilot.connect import flows
from postpilot.connect.base import Input, Method
from postpilot.connect.outcomes import Finished
from postpilot.connect.service import ConnectService
from postpilot.core.timezones import as_utc
from postpilot.runtime import ServiceRuntime, open_runtime
from postpilot.store import accounts
from postpilot.store.tables import Account, Workspace

T = TypeVar("T")

app = usage.group("Connect a workspace's social accounts, list them, check them live.")

WORKSPACE = typer.Option(..., "--workspace", help="The workspace id (`postpilot workspace list`).")


def _in_runtime(workspace_id: str, work: Callable[[ServiceRuntime], Awaitable[T]]) -> T:
    settings = common.settings()

    async def go() -> T:
        async with open_runtime(settings) as runtime:
            async with runtime.db.session() as session:
                if await session.get(Workspace, workspace_id) is None:
                    common.fail(f"no workspace {workspace_id} (see `postpilot workspace list`)")
            return await work(runtime)

    return common.run(go())


def _pairs(values: list[str]) -> dict[str, str]:
    found = {}
    for value in values:
        name, sep, given = value.partition("=")
        if not sep or not name.strip():
            common.fail(f"--input {value!r}: write it as name=value", usage.USAGE_EXIT_CODE)
        found[name.strip()] = given
    return found


def _ask(declared: tuple[Input, ...], given: dict[str, str]) -> dict[str, str]:
    """Each declared input not given on the command line, asked for (secret ones hidden)."""
    for wanted in declared:
        if wanted.name not in given:
            answer = typer.prompt(
                f"{wanted.name} ({wanted.description})",
                default="" if not wanted.required else None,
                hide_input=wanted.secret,
                show_default=False,
            )
            if answer:
                given[wanted.name] = answer
    return given


@app.command()
def connect(
    platform: str = typer.Argument(..., help="x, mastodon, bluesky, telegram, ..."),
    workspace_id: str = WORKSPACE,
    inputs: list[str] = typer.Option(
        [], "--input", help="name=value, e.g. --input instance=mastodon.social (repeatable)."
    ),
    method: str | None = typer.Option(None, help="oauth or direct (default: oauth if offered)."),
    account_id: str | None = typer.Option(
        None, "--account", help="Reconnect this account: same id, posts and history."
    ),
) -> None:
    """Connect an account: prints the platform's authorize URL, then reads the URL the browser
    was sent back to (or only its code); direct platforms ask for their inputs."""
    given = _pairs(inputs)

    async def go(runtime: ServiceRuntime) -> tuple[ServiceRuntime, Finished]:
        service = ConnectService(runtime)
        connector = service.connector(platform)
        how = service.method_of(connector, method)
        declared = connector.start_inputs if how is Method.OAUTH else connector.direct_inputs
        wanted = dict(given)
        if account_id is not None:
            async with runtime.db.session() as session:
                account = await accounts.get_account(session, workspace_id, account_id)
            if account is None or account.platform != platform:
                common.fail(f"no {platform} account {account_id} in workspace {workspace_id}")
            wanted = service.with_server_of(account, declared, given)
        actor = _actor()
        if how is Method.DIRECT:
            finished = await service.connect_direct(
                workspace_id=workspace_id,
                platform=platform,
                inputs=_ask(declared, wanted),
                actor=actor,
                account_id=account_id,
            )
        else:
            started = await service.start(
                workspace_id=workspace_id,
                platform=platform,
                inputs=_ask(declared, wanted),
                actor=actor,
                account_id=account_id,
            )
            common.console.print(
                "Open this URL, allow postpilot, then paste the address your browser was sent "
                "to (or only its code):"
            )
            common.console.print(started.authorize_url, highlight=False, soft_wrap=True)
            pasted = flows.read_pasted(typer.prompt("redirect URL or code", show_default=False))
            state = pasted.state or parse_qs(urlsplit(started.authorize_url).query)["state"][0]
            finished = await service.callback(
                state=state,
                code=pasted.code,
                error=pasted.error,
                error_description=pasted.error_description,
            )
        if finished.status == "choosing":
            for number, choice in enumerate(finished.choices, 1):
                common.console.print(
                    f"  {number}. {escape(choice.name)} ({escape(choice.handle)})", highlight=False
                )
            picks = typer.prompt("connect which (numbers, comma-separated)", show_default=False)
            finished = await service.choose(
                workspace_id=workspace_id,
                flow_id=finished.flow_id or "",
                platform_ids=_picked(picks, finished),
                actor=actor,
            )
        return runtime, finished

    _, finished = _in_runtime(workspace_id, go)
    if finished.status != "done":
        common.fail(finished.message or f"{platform}: nothing was connected")
    for account_id in finished.account_ids:
        common.console.print(f"connected {platform} account {account_id}", highlight=False)


def _picked(answer: str, finished: Finished) -> list[str]:
    picked = []
    for part in filter(None, (p.strip() for p in answer.split(","))):
        if not part.isdigit() or not 1 <= int(part) <= len(finished.choices):
            common.fail(f"{part!r} is not one of 1-{len(finished.choices)}")
        picked.append(finished.choices[int(part) - 1].platform_id)
    if not picked:
        common.fail("nothing picked: nothing was connected")
    return picked


def _expiry(account: Account) -> str:
    if account.token_expires_at is None:
        return "never"
    return as_utc(account.token_expires_at).isoformat(timespec="seconds")


def _line(account: Account, extra: str = "") -> str:
    reason = f" ({account.status_reason})" if account.status_reason else ""
    return (
        f"{account.id}  {account.platform}  {account.handle}  {account.status}{reason}  "
        f"token expires {_expiry(account)}{extra}"
    )


@app.command("list")
def list_(workspace_id: str = WORKSPACE) -> None:
    """Each account: id, platform, handle, status (and why), token expiry."""

    async def go(runtime: ServiceRuntime) -> list[Account]:
        async with runtime.db.session() as session:
            return await accounts.list_accounts(session, workspace_id)

    found = _in_runtime(workspace_id, go)
    if not found:
        common.console.print("accounts: none (connect one with `postpilot accounts connect`)")
    for account in found:
        common.console.print(escape(_line(account)), highlight=False)


@app.command()
def check(
    account_id: str | None = typer.Argument(None, help="One account; default: every one."),
    workspace_id: str = WORKSPACE,
) -> None:
    """Ask each platform now whether the account's credentials still work ("who am I"); an
    account it refuses becomes needs_reconnect with the platform's reason. Exit 1 if one fails."""

    async def go(runtime: ServiceRuntime) -> list[tuple[Account, bool, str]]:
        service = ConnectService(runtime)
        async with runtime.db.session() as session:
            if account_id is None:
                chosen = await accounts.list_accounts(session, workspace_id)
            else:
                one = await accounts.get_account(session, workspace_id, account_id)
                if one is None:
                    common.fail(f"no account {account_id} in workspace {workspace_id}")
                chosen = [one]
        results = []
        for account in chosen:
            if account.platform not in service.connectors:
                results.append((account, True, "no live check for this platform"))
                continue
            checked = await service.check(account, actor=_actor())
            results.append((checked.account, checked.ok, checked.message))
        return results

    results = _in_runtime(workspace_id, go)
    if not results:
        common.console.print("accounts: none (connect one with `postpilot accounts connect`)")
    for account, ok, message in results:
        mark = "ok" if ok else "refused"
        common.console.print(escape(_line(account, f"  {mark}: {message}")), highlight=False)
    if not all(ok for _, ok, _ in results):
        raise typer.Exit(1)
