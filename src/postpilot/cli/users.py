"""`postpilot user`: people who sign in to the web app (the first owner is made here or on the
first-run page) and their roles in workspaces."""

from __future__ import annotations

import sys

import typer

from postpilot import passwords
from postpilot.cli import common, usage
from postpilot.cli.workspace import _actor
from postpilot.core.roles import Role
from postpilot.runtime import open_database
from postpilot.store import users, web_sessions
from postpilot.store.tables import User, Workspace, utcnow

app = usage.group("People who sign in to the web app, and their roles in workspaces.")


def _password(from_stdin: bool) -> str:
    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    if problem := passwords.problem(password):
        common.fail(f"password refused: {problem}")
    return password


@app.command()
def create(
    email: str = typer.Option(..., "--email", help="The person's email: their sign-in name."),
    workspace_id: str = typer.Option(
        ..., "--workspace", help="The workspace id (see `postpilot workspace list`)."
    ),
    role: Role = typer.Option(Role.OWNER, "--role", help="Their role in the workspace."),
    password_stdin: bool = typer.Option(
        False, "--password-stdin", help="Read the password from one line of standard input."
    ),
) -> None:
    """Create a user with a role in a workspace (asks for the password), or give an existing
    user that role there (their password stays as it is)."""
    settings = common.settings()
    try:
        email = users.normalize_email(email)
    except users.InvalidEmail as exc:
        common.fail(str(exc))

    async def lookup() -> bool:
        async with open_database(settings) as db, db.session() as session:
            if await session.get(Workspace, workspace_id) is None:
                common.fail(f"no workspace {workspace_id} (see `postpilot workspace list`)")
            return await users.user_by_email(session, email) is not None

    exists = common.run(lookup())
    password_hash = None if exists else passwords.hash_password(_password(password_stdin))

    async def go() -> User:
        async with open_database(settings) as db, db.transaction() as session:
            user = await users.user_by_email(session, email)
            if user is None:
                if password_hash is None:  # deleted since the look-up
                    common.fail(f"user {email} no longer exists: run the command again")
                user = await users.create_user(
                    session, email=email, password_hash=password_hash, now=utcnow()
                )
            await users.add_membership(
                session,
                user=user,
                workspace_id=workspace_id,
                role=role,
                actor=_actor(),
                now=utcnow(),
            )
            return user

    user = common.run(go())
    what = "added" if exists else "created"
    common.console.print(f"{what} user {user.email} ({user.id}) as {role}", highlight=False)


@app.command("reset-password")
def reset_password(email: str = typer.Argument(..., help="The user's email.")) -> None:
    """Give a user a new random password, printed once (they change it on "Your settings"), and
    sign them out everywhere."""
    settings = common.settings()
    password = passwords.new_password()
    password_hash = passwords.hash_password(password)

    async def go() -> int:
        async with open_database(settings) as db, db.transaction() as session:
            user = await users.user_by_email(session, email)
            if user is None:
                common.fail(f"no user {email.strip().lower()} (see `postpilot user list`)")
            await users.set_password(session, user.id, password_hash)
            return await web_sessions.end_all_of(session, user.id)

    ended = common.run(go())
    common.console.print(
        f"new password for {email.strip().lower()}: {password}\n"
        f"(shown only now; {ended} signed-in session(s) ended)",
        highlight=False,
    )


@app.command("list")
def list_() -> None:
    """List users with each workspace they belong to and their role there."""
    settings = common.settings()

    async def go() -> list[tuple[User, str | None, Role | None]]:
        async with open_database(settings) as db, db.session() as session:
            return await users.all_users(session)

    found = common.run(go())
    if not found:
        common.console.print("users: none (create one with `postpilot user create`)")
    for user, workspace, role in found:
        where = f"{workspace}  {role}" if workspace and role else "(no workspace)"
        common.console.print(f"{user.email}  {where}", highlight=False)
