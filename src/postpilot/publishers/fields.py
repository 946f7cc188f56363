"""What an account of a platform holds: each publisher declares its credentials and options as
data, and an account is checked against that declaration when it is connected or changed, so a
missing token or a misspelt option is refused then rather than found at publish time."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class Kind(StrEnum):
    """Where a field lives on the account: its secrets, or its settings."""

    CREDENTIAL = "credentials"
    OPTION = "options"


@dataclass(frozen=True, slots=True)
class AccountField:
    name: str
    kind: Kind
    description: str  # one line, for a person connecting an account
    secret: bool
    required: bool
    server_url: bool = False  # the account's server: checked like base_url when saved

    @property
    def path(self) -> str:
        return f"{self.kind}.{self.name}"


@dataclass(frozen=True, slots=True)
class Problem:
    """A field an account cannot be saved with, and why, for a person."""

    field: str  # `credentials.bot_token`, `options.chat_id`, `base_url`
    message: str


def credential(
    name: str,
    description: str,
    *,
    required: bool = False,
    secret: bool = True,
    server_url: bool = False,
) -> AccountField:
    return AccountField(name, Kind.CREDENTIAL, description, secret, required, server_url)


def option(name: str, description: str, *, required: bool = False) -> AccountField:
    return AccountField(name, Kind.OPTION, description, secret=False, required=required)


@dataclass(frozen=True, slots=True)
class AccountFields:
    """A platform's declared fields. `credential_sets` lists the ways to sign in where there is
    more than one: the account must hold every credential of at least one set."""

    fields: tuple[AccountField, ...]
    base_url: str = "Another API server than the platform's own (a sandbox, a proxy)."
    needs_base_url: bool = False  # without one the publisher has no server to talk to
    credential_sets: tuple[tuple[str, ...], ...] = ()

    def __post_init__(self) -> None:
        names = [(f.kind, f.name) for f in self.fields]
        if len(names) != len(set(names)):
            raise ValueError("a field is declared twice")
        credentials = set(self.names(Kind.CREDENTIAL))
        if any(name not in credentials for group in self.credential_sets for name in group):
            raise ValueError("a credential set names an undeclared credential")

    def of(self, kind: Kind) -> tuple[AccountField, ...]:
        return tuple(f for f in self.fields if f.kind is kind)

    def names(self, kind: Kind) -> tuple[str, ...]:
        return tuple(f.name for f in self.of(kind))

    def server_urls(self, credentials: Mapping[str, Any]) -> list[tuple[str, object]]:
        """(path, value) of each server URL among `credentials`, to check like base_url."""
        return [
            (f.path, credentials[f.name])
            for f in self.of(Kind.CREDENTIAL)
            if f.server_url and credentials.get(f.name)
        ]

    def check(self, kind: Kind, values: Mapping[str, Any]) -> list[Problem]:
        """Unknown names, then required ones that are missing or empty."""
        declared = self.of(kind)
        known = ", ".join(f.name for f in declared) or "none"
        problems = [
            Problem(f"{kind}.{name}", f"is not one of this platform's {kind} ({known})")
            for name in values
            if name not in {f.name for f in declared}
        ]
        problems += [
            Problem(f.path, f"is required: {f.description}")
            for f in declared
            if f.required and not values.get(f.name)
        ]
        if kind is Kind.CREDENTIAL and not self.signs_in(values):
            ways = ", or ".join(" + ".join(group) for group in self.credential_sets)
            problems.append(Problem(str(kind), f"need {ways}"))
        return problems

    def signs_in(self, credentials: Mapping[str, Any]) -> bool:
        """Whether `credentials` hold one complete credential set (any, if none is declared)."""
        sets = self.credential_sets
        return not sets or any(all(credentials.get(n) for n in group) for group in sets)

    def check_base_url(self, base_url: str | None) -> list[Problem]:
        if self.needs_base_url and not base_url:
            return [Problem("base_url", f"is required: {self.base_url}")]
        return []
