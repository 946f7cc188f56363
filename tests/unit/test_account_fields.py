"""Every publisher declares what an account of its platform holds, the declaration names exactly
the credentials and options the publisher reads, and an account is checked against it."""

from __future__ import annotations

import ast
import inspect
import sys
from pathlib import Path

import pytest

from postpilot.publishers import catalog
from postpilot.publishers.base import Publisher
from postpilot.publishers.fields import AccountFields, Kind, Problem, credential, option
from postpilot.publishers.registry import PUBLISHERS

# Read by a module several publishers share, but only on behalf of one of them.
READ_FOR_ANOTHER = {"threads": {"options.login"}}  # containers.py: only Instagram has two logins


def _read_keys(source: str, publisher: Publisher) -> set[str]:
    """`credentials.<name>` and `options.<name>` for every literal read of `credentials[...]`,
    `credentials.get(...)`, `options[...]`, `options.get(...)` in `source`. A key held in a
    tuple looped over, or in the flavour's `user_option`, is resolved; anything else fails."""
    tree = ast.parse(source)
    tuples = {
        target.id: [e.value for e in node.value.elts if isinstance(e, ast.Constant)]
        for node in ast.walk(tree)
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Tuple)
        for target in node.targets
        if isinstance(target, ast.Name)
    }
    loops = {
        c.target.id: c.iter.id
        for c in ast.walk(tree)
        if isinstance(c, ast.comprehension)
        and isinstance(c.target, ast.Name)
        and isinstance(c.iter, ast.Name)
    }
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            if node.func.attr != "get" or not node.args:
                continue
            holder, key = node.func.value, node.args[0]
        elif isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Load):
            holder, key = node.value, node.slice
        else:
            continue
        kind = _kind(holder)
        if kind is None:
            continue
        if isinstance(key, ast.Constant) and isinstance(key.value, str):
            names = [key.value]
        elif isinstance(key, ast.Name) and loops.get(key.id) in tuples:
            names = [str(n) for n in tuples[loops[key.id]]]
        elif isinstance(key, ast.Attribute) and key.attr == "user_option":
            names = [publisher.flavour.user_option]  # type: ignore[attr-defined]
        else:
            pytest.fail(f"cannot tell which {kind} line {node.lineno} reads: keep keys literal")
        found.update(f"{kind}.{name}" for name in names)
    return found


def _kind(holder: ast.expr) -> str | None:
    name = holder.id if isinstance(holder, ast.Name) else getattr(holder, "attr", None)
    return name if name in (Kind.CREDENTIAL, Kind.OPTION) else None


def _reads(publisher: Publisher) -> set[str]:
    """What the publisher's module and the modules of its publisher base classes read."""
    modules = {
        sys.modules[cls.__module__]
        for cls in type(publisher).__mro__
        if cls.__module__.startswith("postpilot.publishers.")
    }
    found: set[str] = set()
    for module in modules:
        found |= _read_keys(Path(inspect.getfile(module)).read_text(), publisher)
    return found - READ_FOR_ANOTHER.get(publisher.platform, set())


@pytest.mark.parametrize("platform", sorted(PUBLISHERS))
def test_every_publisher_declares_its_fields(platform: str) -> None:
    declared = PUBLISHERS[platform].account_fields
    assert isinstance(declared, AccountFields)
    for field in declared.fields:
        assert field.description and "\n" not in field.description, field
        assert field.kind is Kind.CREDENTIAL or not field.secret, f"{field.path} is an option"
    assert declared.check(Kind.CREDENTIAL, {}), "an account without credentials is refused"


@pytest.mark.parametrize("platform", sorted(PUBLISHERS))
def test_the_declaration_names_what_the_publisher_reads(platform: str) -> None:
    publisher = PUBLISHERS[platform]
    declared = {f.path for f in publisher.account_fields.fields}
    read = _reads(publisher)
    assert read - declared == set(), "read but not declared"
    assert declared - read == set(), "declared but never read"


def test_the_readme_lists_every_platforms_fields() -> None:
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    assert catalog.with_table(readme) == readme, "the table is stale: run scripts/account-fields"


TELEGRAM = AccountFields(
    (
        credential("bot_token", "The bot's token.", required=True),
        option("chat_id", "The chat.", required=True),
        option("parse_mode", "How the text is marked up."),
    )
)
WEBHOOK = AccountFields(
    (
        credential("webhook_url", "The URL."),
        credential("webhook_id", "The id.", secret=False),
        credential("webhook_token", "The token."),
        credential("server", "Its server.", secret=False, server_url=True),
    ),
    base_url="The instance.",
    needs_base_url=True,
    credential_sets=(("webhook_url",), ("webhook_id", "webhook_token")),
)


def test_required_fields_must_be_present_and_not_empty() -> None:
    assert TELEGRAM.check(Kind.CREDENTIAL, {"bot_token": "123:abc"}) == []
    assert TELEGRAM.check(Kind.CREDENTIAL, {"bot_token": ""}) == [
        Problem("credentials.bot_token", "is required: The bot's token.")
    ]
    assert TELEGRAM.check(Kind.OPTION, {"parse_mode": "HTML"}) == [
        Problem("options.chat_id", "is required: The chat.")
    ]
    assert TELEGRAM.check(Kind.OPTION, {"chat_id": -100123}) == []


def test_unknown_names_are_named_with_the_known_ones() -> None:
    assert TELEGRAM.check(Kind.CREDENTIAL, {"bot_token": "t", "token": "t"}) == [
        Problem("credentials.token", "is not one of this platform's credentials (bot_token)")
    ]
    assert TELEGRAM.check(Kind.OPTION, {"chat_id": 1, "chatid": 1}) == [
        Problem("options.chatid", "is not one of this platform's options (chat_id, parse_mode)")
    ]


def test_one_complete_credential_set_is_enough() -> None:
    assert WEBHOOK.check(Kind.CREDENTIAL, {"webhook_url": "https://x/api/webhooks/1/t"}) == []
    assert WEBHOOK.check(Kind.CREDENTIAL, {"webhook_id": "1", "webhook_token": "t"}) == []
    assert WEBHOOK.check(Kind.CREDENTIAL, {"webhook_id": "1"}) == [
        Problem("credentials", "need webhook_url, or webhook_id + webhook_token")
    ]


def test_base_url_and_server_urls() -> None:
    assert WEBHOOK.check_base_url(None) == [Problem("base_url", "is required: The instance.")]
    assert WEBHOOK.check_base_url("https://example.social") == []
    assert TELEGRAM.check_base_url(None) == []
    assert WEBHOOK.server_urls({"server": "https://pds.example", "webhook_url": "u"}) == [
        ("credentials.server", "https://pds.example")
    ]


def test_a_declaration_is_consistent() -> None:
    with pytest.raises(ValueError, match="twice"):
        AccountFields((option("a", "A."), option("a", "Again.")))
    with pytest.raises(ValueError, match="undeclared"):
        AccountFields((credential("a", "A."),), credential_sets=(("b",),))
