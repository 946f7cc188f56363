"""The engine alone: one claimed delivery, a scripted publisher, and only what the engine reads
from a runtime (no database unless a token must be renewed, no network, the clock stopped).
What each publisher answer becomes, by the platform's recovery kind, and how a publisher crash,
a stop mid-send and a takeover are decided."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar, cast

import httpx
import pytest

from postpilot.cache.memory import TTLCache
from postpilot.core import outcomes
from postpilot.core.retry import RetryPolicy
from postpilot.core.states import DeliveryStatus
from postpilot.core.transitions import Event, Recovery
from postpilot.crypto import CredentialCipher
from postpilot.publishers import flow, registry
from postpilot.publishers.base import (
    AccountContext,
    PublishContext,
    PublishRequest,
    Refreshed,
    RefreshFailed,
    RefreshResult,
)
from postpilot.publishers.media import MediaFetcher
from postpilot.publishers.parts import sending_part
from postpilot.scheduler import engine
from postpilot.scheduler.journal import InFlightJournal
from postpilot.scheduler.runtime import Runtime
from postpilot.store import work, workspaces
from postpilot.store.database import Database
from postpilot.store.tables import Account
from postpilot.store.work import AccountRecord, ClaimedDelivery, PostContent, WorkItem
from tests.helpers import TEST_SECRET_KEY
from tests.mock_platform import NOW

PASS_ID = "pass-under-test"
Step = outcomes.Outcome | Exception


class Scripted:
    """Answers each publish with the next step of its script (an exception is raised), and
    each refresh with `renewal`; records what it was asked."""

    platform: ClassVar[str]
    recovery: ClassVar[Recovery]
    can_refresh: ClassVar[bool] = False

    def __init__(self, *script: Step, renewal: RefreshResult | None = None) -> None:
        self.script = list(script)
        self.renewal = renewal or RefreshFailed("this platform cannot renew tokens")
        self.sent: list[PublishRequest] = []
        self.renewed: list[AccountContext] = []

    async def publish(self, request: PublishRequest, ctx: PublishContext) -> outcomes.Outcome:
        if (hook := flow.before_publishing_request.get()) is not None:
            await hook()  # what a real publisher's publishing request does first
        self.sent.append(request)
        step = self.script.pop(0)
        if isinstance(step, Exception):
            raise step
        return step

    async def refresh(self, account: AccountContext, ctx: PublishContext) -> RefreshResult:
        self.renewed.append(account)
        return self.renewal


class Idempotent(Scripted):
    platform = "test-idempotent"
    recovery = Recovery.IDEMPOTENT


class Verifiable(Scripted):
    platform = "test-verifiable"
    recovery = Recovery.VERIFIABLE


class Unrepeatable(Scripted):
    platform = "test-unrepeatable"
    recovery = Recovery.NONE


class Renewable(Scripted):
    platform = "test-renewable"
    recovery = Recovery.IDEMPOTENT
    can_refresh = True


@dataclass
class EngineRuntime:
    """What the engine reads from a runtime. No database but in the token tests: any other
    test that reached for one would fail."""

    journal: InFlightJournal
    publish: PublishContext
    cipher: CredentialCipher = field(default_factory=lambda: CredentialCipher(TEST_SECRET_KEY))
    policy: RetryPolicy = field(
        default_factory=lambda: RetryPolicy(max_attempts=3, base_delay_seconds=0)
    )
    credentials: TTLCache[dict[str, Any]] = field(
        default_factory=lambda: TTLCache("credentials", ttl_seconds=60)
    )
    db: Database | None = None

    def now(self) -> datetime:
        return NOW


@pytest.fixture
async def runtime(tmp_path: Path) -> AsyncIterator[Runtime]:
    def unreachable(request: httpx.Request) -> httpx.Response:
        raise AssertionError(f"the engine itself sent {request.url}")

    async with httpx.AsyncClient(transport=httpx.MockTransport(unreachable)) as http:
        ctx = PublishContext(http=http, media=MediaFetcher(http, max_bytes=1024), now=lambda: NOW)
        journal = InFlightJournal(tmp_path / "journal")
        await journal.begin(PASS_ID)
        yield cast(Runtime, EngineRuntime(journal=journal, publish=ctx))


@contextlib.contextmanager
def registered(*publishers: Scripted) -> Iterator[None]:
    """The engine finds these publishers by platform, beside the real ones."""
    with pytest.MonkeyPatch.context() as patch:
        table = {**registry.PUBLISHERS, **{p.platform: p for p in publishers}}
        patch.setattr(engine, "PUBLISHERS", table)
        yield


def work_item(
    platform: str,
    *,
    attempts: int = 0,
    credentials: dict[str, Any] | None = None,
    status: str = "active",
    expires_in: timedelta | None = None,
    recovered: bool = False,
    previous_claimer: str | None = None,
    account_id: str = "acct-1",
) -> WorkItem:
    cipher = CredentialCipher(TEST_SECRET_KEY)
    return WorkItem(
        delivery=ClaimedDelivery(
            id=f"dlv-{platform}-{attempts}",
            workspace_id="ws-1",
            post_id="post-1",
            account_id=account_id,
            platform=platform,
            attempts=attempts,
            scheduled_at=NOW,
            due_at=NOW,
            idempotency_key="key-1",
            recovered=recovered,
            previous_claimer=previous_claimer,
        ),
        post=PostContent(
            id="post-1",
            text="hello",
            media_urls=(),
            overrides={platform: "hello, platform"},
            version=1,
        ),
        account=AccountRecord(
            id=account_id,
            workspace_id="ws-1",
            platform=platform,
            handle="@someone",
            base_url=None,
            options={},
            credentials=cipher.encrypt(credentials or {"access_token": "old"}),
            credentials_version=1,
            token_expires_at=NOW + expires_in if expires_in is not None else None,
            status=status,
            status_reason=None if status == "active" else "reconnect it",
        ),
    )


async def decide(item: WorkItem, runtime: Runtime) -> engine.Processed:
    return await engine.process(item, runtime, engine.PassState(runtime, PASS_ID))


# --- what each answer becomes, by recovery kind ------------------------------------------------

AMBIGUOUS = outcomes.Ambiguous("no answer after sending")
BY_RECOVERY = [
    (Idempotent, DeliveryStatus.SCHEDULED, Event.RETRY_SCHEDULED),
    (Verifiable, DeliveryStatus.SCHEDULED, Event.RETRY_SCHEDULED),
    (Unrepeatable, DeliveryStatus.UNKNOWN, Event.UNKNOWN),
]


@pytest.mark.parametrize(("kind", "status", "event"), BY_RECOVERY)
async def test_an_ambiguous_answer_is_retried_only_where_a_repeat_is_safe(
    runtime: Runtime, kind: type[Scripted], status: DeliveryStatus, event: Event
) -> None:
    publisher = kind(AMBIGUOUS)
    with registered(publisher):
        processed = await decide(work_item(publisher.platform), runtime)
    transition = processed.decision.transition
    assert (transition.status, transition.event) == (status, event)
    assert (processed.outcome, transition.attempts) == ("ambiguous", 1)


@pytest.mark.parametrize(("kind", "status", "event"), BY_RECOVERY)
async def test_a_publisher_crash_is_decided_as_ambiguous(
    runtime: Runtime, kind: type[Scripted], status: DeliveryStatus, event: Event
) -> None:
    publisher = kind(RuntimeError("https://api.example/bot123:secret/send failed"))
    with registered(publisher):
        processed = await decide(work_item(publisher.platform), runtime)
    transition = processed.decision.transition
    assert (processed.outcome, transition.status, transition.event) == ("ambiguous", status, event)
    assert "RuntimeError" in transition.detail and "secret" not in transition.detail
    assert processed.ours  # our code failed, not the platform: logged as an error


async def test_the_last_attempt_that_stays_unclear_fails(runtime: Runtime) -> None:
    publisher = Idempotent(AMBIGUOUS)
    with registered(publisher):
        processed = await decide(work_item(publisher.platform, attempts=2), runtime)
    assert processed.decision.transition.status == DeliveryStatus.FAILED


@pytest.mark.parametrize(
    ("answer", "status", "attempts"),
    [
        (outcomes.Published("p-1"), DeliveryStatus.PUBLISHED, 1),
        (outcomes.Transient("503"), DeliveryStatus.SCHEDULED, 1),
        (outcomes.Permanent("too long"), DeliveryStatus.FAILED, 1),
        (outcomes.RateLimited(until=NOW + timedelta(minutes=5)), DeliveryStatus.SCHEDULED, 0),
    ],
    ids=["published", "transient", "permanent", "rate limited"],
)
async def test_clear_answers(
    runtime: Runtime, answer: outcomes.Outcome, status: DeliveryStatus, attempts: int
) -> None:
    publisher = Unrepeatable(answer)
    with registered(publisher):
        processed = await decide(work_item(publisher.platform), runtime)
    transition = processed.decision.transition
    assert (transition.status, transition.attempts) == (status, attempts)
    assert not processed.ours  # whatever the platform answered, it is not our fault
    (sent,) = publisher.sent
    assert (sent.text, sent.idempotency_key, sent.attempt) == ("hello, platform", "key-1", 1)


async def test_only_a_platform_without_idempotency_is_journaled_before_sending(
    runtime: Runtime,
) -> None:
    journaled, plain = Unrepeatable(AMBIGUOUS), Idempotent(AMBIGUOUS)
    with registered(journaled, plain):
        for publisher in (journaled, plain):
            await decide(work_item(publisher.platform), runtime)
    journal = runtime.journal
    assert await journal.may_have_sent(PASS_ID, work_item(journaled.platform).delivery.id)
    assert not await journal.may_have_sent(PASS_ID, work_item(plain.platform).delivery.id)


@pytest.mark.parametrize(
    ("kind", "outcome"),
    [(Unrepeatable, "transient"), (Idempotent, "ambiguous")],
    ids=["unrepeatable", "idempotent"],
)
async def test_a_stop_before_the_publishing_request(
    runtime: Runtime, kind: type[Scripted], outcome: str
) -> None:
    """Provably unsent where the journal tells (nothing marked); elsewhere it may have gone
    out, and the platform's key makes the retry safe."""
    publisher = kind()
    state = engine.PassState(runtime, PASS_ID)
    with registered(publisher):
        stopped = engine.interrupted(work_item(publisher.platform), runtime, state, "timed out")
    assert stopped.outcome == outcome
    assert stopped.decision.transition.status == DeliveryStatus.SCHEDULED


async def test_a_stop_after_the_journal_mark_leaves_the_delivery_in_doubt(
    runtime: Runtime,
) -> None:
    publisher = Unrepeatable()
    item = work_item(publisher.platform)
    state = engine.PassState(runtime, PASS_ID)
    await state.before_send(item.delivery.id)
    with registered(publisher):
        stopped = engine.interrupted(item, runtime, state, "shutting down")
    assert stopped.decision.transition.status == DeliveryStatus.UNKNOWN
    assert await runtime.journal.may_have_sent(PASS_ID, item.delivery.id)


@pytest.mark.parametrize(("recorded", "status"), [({0, 1}, "scheduled"), ({0}, "unknown")])
async def test_a_stop_between_parts_is_in_doubt_only_while_the_last_part_is_unrecorded(
    runtime: Runtime, recorded: set[int], status: str
) -> None:
    """Part 2 (index 1) was journaled as sending: recorded since, the stop left nothing in
    doubt and the delivery is retried from part 3; not recorded, it may be out there."""
    publisher = Unrepeatable()
    item = work_item(publisher.platform)
    state = engine.PassState(runtime, PASS_ID)
    for part in (0, 1):
        token = sending_part.set(part)
        try:
            await state.before_send(item.delivery.id)
        finally:
            sending_part.reset(token)
    state.parts_recorded[item.delivery.id] = recorded
    with registered(publisher):
        stopped = engine.interrupted(item, runtime, state, "shutting down")
    assert stopped.decision.transition.status == DeliveryStatus(status)
    record = await runtime.journal.read(PASS_ID)
    assert record is not None and record.parts == {item.delivery.id: 1}


async def test_an_account_that_needs_reconnecting_is_not_sent_to(runtime: Runtime) -> None:
    publisher = Idempotent()
    with registered(publisher):
        processed = await decide(work_item(publisher.platform, status="needs_reconnect"), runtime)
    assert processed.outcome == "token_expired" and publisher.sent == []
    assert processed.decision.transition.account_needs_reconnect


async def test_a_platform_without_a_publisher_fails_for_good(runtime: Runtime) -> None:
    processed = await decide(work_item("no-such-platform"), runtime)
    assert processed.decision.transition.status == DeliveryStatus.FAILED
    assert "no publisher" in processed.decision.transition.detail
    assert processed.ours


# --- a delivery taken over from a pass whose lease ran out -------------------------------------


@pytest.mark.parametrize(
    ("kind", "journaled_as_sending", "status"),
    [
        (Unrepeatable, True, DeliveryStatus.UNKNOWN),  # may have been sent: a person decides
        (Unrepeatable, False, DeliveryStatus.PUBLISHED),  # provably never sent: sent now
        (Idempotent, True, DeliveryStatus.PUBLISHED),  # the platform deduplicates the repeat
    ],
    ids=["unrepeatable, in flight", "unrepeatable, never sent", "idempotent"],
)
async def test_a_takeover_follows_the_previous_pass_journal(
    runtime: Runtime, kind: type[Scripted], journaled_as_sending: bool, status: DeliveryStatus
) -> None:
    publisher = kind(outcomes.Published("p-2"))
    item = work_item(publisher.platform, recovered=True, previous_claimer="dead-pass")
    await runtime.journal.begin("dead-pass")
    if journaled_as_sending:
        await runtime.journal.mark("dead-pass", item.delivery.id)
    with registered(publisher):
        processed = await decide(item, runtime)
    assert processed.decision.transition.status == status
    assert len(publisher.sent) == (status == DeliveryStatus.PUBLISHED)


async def test_a_takeover_without_the_previous_journal_assumes_it_was_sent(
    runtime: Runtime,
) -> None:
    publisher = Unrepeatable(outcomes.Published("p-3"))
    item = work_item(publisher.platform, recovered=True, previous_claimer="pass-elsewhere")
    with registered(publisher):
        processed = await decide(item, runtime)
    assert processed.decision.transition.status == DeliveryStatus.UNKNOWN
    assert publisher.sent == []


async def test_an_outcome_the_previous_pass_decided_is_written_without_sending(
    runtime: Runtime,
) -> None:
    publisher = Unrepeatable(outcomes.Published("p-first"))
    item = work_item(publisher.platform, recovered=True, previous_claimer="dead-pass")
    with registered(publisher):
        decided = await decide(
            replace(item, delivery=replace(item.delivery, recovered=False)), runtime
        )
        await runtime.journal.begin("dead-pass")
        await runtime.journal.keep_outcomes(
            "dead-pass", [(item.delivery.id, decided.decision.transition)]
        )
        processed = await decide(item, runtime)
    assert processed.outcome == "recovered"
    assert processed.decision.transition.platform_post_id == "p-first"
    assert "journal of pass dead-pass" in processed.decision.transition.detail
    assert len(publisher.sent) == 1, "only the first pass sent it"


# --- tokens: these need the stored credentials, so a database ---------------------------------


@pytest.fixture
async def stored(runtime: Runtime, sqlite_db: Database) -> AsyncIterator[str]:
    """An account row holding the "old" token at version 1; yields its id."""
    runtime.db = sqlite_db
    async with sqlite_db.transaction() as session:
        created = await workspaces.create_workspace(session, name="tokens")
        account = Account(
            workspace_id=created.workspace.id,
            platform=Renewable.platform,
            handle="@someone",
            options={},
            credentials=runtime.cipher.encrypt({"access_token": "old"}),
        )
        session.add(account)
    yield account.id


def renewed_to(token: str) -> Refreshed:
    return Refreshed({"access_token": token}, expires_at=NOW + timedelta(hours=2))


async def stored_version(runtime: Runtime, account_id: str) -> tuple[int, str]:
    async with runtime.db.engine.connect() as conn:
        row = await work.read_credentials(conn, account_id)
    assert row is not None
    return row.credentials_version, runtime.cipher.decrypt(row.credentials)["access_token"]


async def test_a_rejected_token_is_renewed_once_and_the_publish_tried_again(
    runtime: Runtime, stored: str
) -> None:
    publisher = Renewable(
        outcomes.TokenExpired(), outcomes.Published("p-4"), renewal=renewed_to("new")
    )
    with registered(publisher):
        processed = await decide(work_item(publisher.platform, account_id=stored), runtime)
    assert processed.outcome == "published"
    assert [r.account.credentials["access_token"] for r in publisher.sent] == ["old", "new"]
    assert len(publisher.renewed) == 1
    assert await stored_version(runtime, stored) == (2, "new")


async def test_a_token_about_to_expire_is_renewed_before_the_publish(
    runtime: Runtime, stored: str
) -> None:
    publisher = Renewable(outcomes.Published("p-5"), renewal=renewed_to("fresh"))
    item = work_item(publisher.platform, account_id=stored, expires_in=timedelta(seconds=30))
    with registered(publisher):
        processed = await decide(item, runtime)
    assert processed.outcome == "published"
    assert [r.account.credentials["access_token"] for r in publisher.sent] == ["fresh"]


async def test_a_token_rejected_just_after_renewing_is_tried_again_later(
    runtime: Runtime, stored: str
) -> None:
    publisher = Renewable(outcomes.TokenExpired(), outcomes.TokenExpired(), renewal=renewed_to("n"))
    with registered(publisher):
        processed = await decide(work_item(publisher.platform, account_id=stored), runtime)
    assert processed.outcome == "transient"
    assert processed.decision.transition.status == DeliveryStatus.SCHEDULED
    assert not any(change.needs_reconnect for change in processed.account_changes)


@pytest.mark.parametrize(
    "publisher",
    [
        Renewable(outcomes.TokenExpired(), renewal=RefreshFailed("revoked")),
        Idempotent(outcomes.TokenExpired()),
    ],
    ids=["renewal refused", "cannot renew"],
)
async def test_a_token_that_cannot_be_renewed_needs_a_reconnect(
    runtime: Runtime, stored: str, publisher: Scripted
) -> None:
    with registered(publisher):
        processed = await decide(work_item(publisher.platform, account_id=stored), runtime)
    assert processed.outcome == "token_expired" and len(publisher.sent) == 1
    assert processed.decision.transition.status == DeliveryStatus.FAILED
    (change,) = processed.account_changes
    assert change.account_id == stored and change.needs_reconnect
