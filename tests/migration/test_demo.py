"""`postpilot demo seed/clean`: realistic posts against sandbox accounts that really publish, and
a clean-up that removes exactly those and leaves real data alone."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import func, select

from postpilot import passwords
from postpilot.core.roles import Role
from postpilot.runtime import ServiceRuntime, build_runtime
from postpilot.sandbox.client import SandboxClient
from postpilot.scheduler.passes import run_pass
from postpilot.store import posts, rows, users, workspaces
from postpilot.store.database import Database
from postpilot.store.tables import Account, Activity, Delivery, Post, Workspace
from postpilot.tools import demo
from tests.helpers import make_settings
from tests.migration.conftest import assert_one_line_error, run_cli


async def _count(db: Database, table: type, *where: object) -> int:
    async with db.engine.connect() as conn:
        query = select(func.count()).select_from(table)
        for condition in where:
            query = query.where(condition)  # type: ignore[arg-type]
        return int((await conn.execute(query)).scalar_one())


async def _real_data(db: Database, runtime: ServiceRuntime) -> dict[str, str]:
    """A real workspace, account, post (with its activity) that clean must never touch."""
    async with db.transaction() as session:
        created = await workspaces.create_workspace(session, name="acme")
        account = Account(
            workspace_id=created.workspace.id,
            platform="mastodon",
            handle="@acme",
            base_url="https://mastodon.example",
            options={},
            credentials=runtime.cipher.encrypt({"access_token": "real"}),
        )
        session.add(account)
        await session.flush()
        post = await posts.create_post(
            session,
            workspace_id=created.workspace.id,
            text_="a real post",
            media_urls=[],
            overrides={},
            scheduled_at=datetime(2030, 1, 1, tzinfo=UTC),
            timezone="UTC",
            accounts=[account],
            now=datetime.now(UTC),
        )
        return {"workspace": created.workspace.id, "account": account.id, "post": post.id}


async def test_seeded_posts_publish_and_clean_removes_exactly_them(
    any_db: Database, sandbox: SandboxClient
) -> None:
    runtime = build_runtime(make_settings(any_db, sandbox), db=any_db)
    try:
        real = await _real_data(any_db, runtime)
        before = await rows.counts(any_db)

        seeded = await run_cli(
            any_db,
            "demo",
            "seed",
            "--posts",
            "12",
            "--spread",
            "0s",
            "--sandbox-url",
            sandbox.url,
        )
        assert seeded.exit_code == 0, seeded.output
        assert "seeded 12 posts (24 deliveries) to 4 sandbox accounts" in seeded.stdout
        assert await _count(any_db, Post, Post.source == "demo") == 12
        async with any_db.session() as session:
            demo_accounts = await session.scalars(
                select(Account).where(Account.options["demo"].as_boolean().is_(True))
            )
            platforms = {a.platform for a in demo_accounts}
        assert platforms == {"mastodon", "x", "bluesky"}

        # They are realistic enough to publish: every delivery goes out to the sandbox.
        report = await run_pass(runtime, scheduler="optimized", limit=100, concurrency=4)
        assert (report.claimed, report.published) == (24, 24), report.summary()
        assert {r["platform"] for r in sandbox.records()} == {"mastodon", "x", "bluesky"}
        assert sum(len(r["media"]) for r in sandbox.records()) == 4 * 2  # every third post

        # A real post in the demo workspace that targets a demo account keeps both.
        async with any_db.transaction() as session:
            demo_space = await session.scalar(select(Workspace).where(Workspace.name == "demo"))
            kept_account = await session.scalar(
                select(Account).where(
                    Account.platform == "x", Account.workspace_id == demo_space.id
                )
            )
            await posts.create_post(
                session,
                workspace_id=demo_space.id,
                text_="written by a person in the demo workspace",
                media_urls=[],
                overrides={},
                scheduled_at=datetime(2030, 1, 1, tzinfo=UTC),
                timezone="UTC",
                accounts=[kept_account],
                now=datetime.now(UTC),
            )

        cleaned = await run_cli(any_db, "demo", "clean")
        assert cleaned.exit_code == 0, cleaned.output
        assert "removed 12 demo posts, 24 deliveries, 36 activity entries, 3 demo accounts" in (
            cleaned.stdout
        )
        assert "kept demo account x brand_x" in cleaned.stdout  # X's username, connected
        assert await _count(any_db, Post, Post.source == "demo") == 0
        assert await _count(any_db, Post) == 2
        assert await _count(any_db, Workspace, Workspace.name == "demo") == 1

        # The real data is all there, row for row.
        after = await rows.counts(any_db)
        assert await _count(any_db, Post, Post.id == real["post"]) == 1
        assert await _count(any_db, Account, Account.id == real["account"]) == 1
        assert await _count(any_db, Delivery, Delivery.post_id == real["post"]) == 1
        assert await _count(any_db, Activity, Activity.post_id == real["post"]) == 1
        assert after["workspaces"] == before["workspaces"] + 1  # the demo workspace stays
        assert after["accounts"] == before["accounts"] + 1  # the demo account still in use

        # Once nothing real uses them, the demo account and workspace go too.
        async with any_db.transaction() as session:
            await session.execute(Post.__table__.delete().where(Post.workspace_id == demo_space.id))
        again = await run_cli(any_db, "demo", "clean")
        assert again.exit_code == 0, again.output
        assert "1 demo accounts, 1 demo workspace(s)" in again.stdout
        final = await rows.counts(any_db)
        for table in ("workspaces", "api_keys", "accounts", "posts", "deliveries"):
            assert final[table] == before[table], table
        # What is left beyond `before` is the test's own doing: the pass's figures and the
        # created entry of the post the test deleted by hand; and who connected each of the 4
        # demo accounts (account activity is kept, as for any deleted account).
        assert final["activity"] == before["activity"] + 1 + 4
    finally:
        await runtime.close()


async def test_seed_bad_input_is_one_line_and_adds_nothing(any_db: Database) -> None:
    for args, message in (
        (["--posts", "0"], "--posts must be between 1 and 10000"),
        (["--posts", "3", "--spread", "5x"], "'5x' is not a duration"),
        (["--posts", "3", "--start-in", "-1m"], "not a duration"),
        (["--posts", "3", "--sandbox-url", "ftp://sandbox"], "--sandbox-url must be an http"),
    ):
        result = await run_cli(any_db, "demo", "seed", *args)
        assert_one_line_error(result, message)
    assert await _count(any_db, Post) == 0
    assert await _count(any_db, Workspace) == 0


async def test_clean_on_a_database_without_demo_data(any_db: Database) -> None:
    result = await run_cli(any_db, "demo", "clean")
    assert result.exit_code == 0, result.output
    assert "removed 0 demo posts" in result.stdout


async def test_the_demo_owner_signs_in_with_the_password_of_the_latest_run(
    sqlite_db: Database,
) -> None:
    """`demo run` prints a sign-in for the web app: the demo workspace's owner, whose password
    each run replaces."""
    async with sqlite_db.transaction() as session:
        made = await workspaces.create_workspace(session, name="demo")
    now = datetime(2026, 12, 1, tzinfo=UTC)
    first = await demo.demo_owner(sqlite_db, workspace_id=made.workspace.id, now=now)
    second = await demo.demo_owner(sqlite_db, workspace_id=made.workspace.id, now=now)
    assert first != second
    async with sqlite_db.session() as session:
        user = await users.user_by_email(session, demo.DEMO_OWNER)
        assert user is not None
        assert passwords.verify(user.password_hash, second)
        assert not passwords.verify(user.password_hash, first)
        member = await users.membership(session, user.id, made.workspace.id)
        assert member is not None and member.role == Role.OWNER
