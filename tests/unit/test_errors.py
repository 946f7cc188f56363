"""Every exception class of postpilot derives from PostpilotError, and the tree in
postpilot/errors.py names each public one."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re

import postpilot
from postpilot import errors
from postpilot.errors import InvalidValue, PostpilotError

# Alembic's environment runs migrations when imported; the CLI entry points run when executed.
NOT_IMPORTED = re.compile(r"postpilot\.store\.migrations(\..*)?|.*\.__main__")


def project_exceptions() -> list[type[BaseException]]:
    found: dict[str, type[BaseException]] = {}
    for module_info in pkgutil.walk_packages(postpilot.__path__, "postpilot."):
        if NOT_IMPORTED.fullmatch(module_info.name):
            continue
        module = importlib.import_module(module_info.name)
        for _, value in inspect.getmembers(module, inspect.isclass):
            if issubclass(value, BaseException) and value.__module__.startswith("postpilot."):
                found[f"{value.__module__}.{value.__qualname__}"] = value
    return list(found.values())


def test_every_exception_derives_from_the_root() -> None:
    classes = project_exceptions()
    assert len(classes) > 20
    outside = [c.__qualname__ for c in classes if not issubclass(c, PostpilotError)]
    assert outside == []


def test_the_tree_names_every_public_exception() -> None:
    tree = errors.__doc__ or ""
    public = {c.__name__ for c in project_exceptions() if not c.__name__.startswith("_")}
    missing = sorted(name for name in public if not re.search(rf"\b{name}\b", tree))
    assert missing == []


def test_the_docstring_is_the_default_message_in_one_line() -> None:
    class Refused(PostpilotError):
        """The first line,
        and the second."""

    assert str(Refused()) == "The first line, and the second."
    assert str(Refused("what happened")) == "what happened"


def test_an_invalid_value_is_also_a_value_error() -> None:
    # Pydantic validators turn a ValueError into a 422 naming the field.
    assert issubclass(InvalidValue, ValueError)
    assert issubclass(InvalidValue, PostpilotError)
