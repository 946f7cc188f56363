"""A post's status derives from its deliveries, in Python and in SQL alike."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from postpilot.core.states import DeliveryStatus as D
from postpilot.core.states import PostStatus as P
from postpilot.core.states import derive_post_status


@pytest.mark.parametrize(
    ("deliveries", "expected"),
    [
        ([(D.SCHEDULED, 0), (D.SCHEDULED, 0)], P.SCHEDULED),
        ([(D.SCHEDULED, 1)], P.PUBLISHING),
        ([(D.PUBLISHED, 1), (D.SCHEDULED, 0)], P.PUBLISHING),
        ([(D.CLAIMED, 0), (D.PUBLISHED, 1)], P.PUBLISHING),
        ([(D.PUBLISHED, 1), (D.PUBLISHED, 2)], P.PUBLISHED),
        ([(D.PUBLISHED, 1), (D.FAILED, 1)], P.PARTIALLY_PUBLISHED),
        ([(D.PUBLISHED, 1), (D.CANCELLED, 0)], P.PARTIALLY_PUBLISHED),
        ([(D.FAILED, 1), (D.CANCELLED, 0)], P.FAILED),
        ([(D.CANCELLED, 0)], P.CANCELLED),
        ([(D.CANCELLED, 0), (D.SCHEDULED, 0)], P.SCHEDULED),  # its account was deleted
        ([(D.CANCELLED, 1), (D.SCHEDULED, 0)], P.PUBLISHING),
        ([(D.UNKNOWN, 1), (D.PUBLISHED, 1)], P.NEEDS_ATTENTION),
        ([], P.CANCELLED),
    ],
)
def test_derived_status(deliveries: list[tuple[D, int]], expected: P) -> None:
    assert derive_post_status(deliveries) is expected


@settings(max_examples=200)
@given(st.lists(st.tuples(st.sampled_from(list(D)), st.integers(0, 3)), min_size=1, max_size=6))
def test_terminal_only_when_nothing_is_pending(deliveries: list[tuple[D, int]]) -> None:
    status = derive_post_status(deliveries)
    pending = any(d in (D.SCHEDULED, D.CLAIMED) for d, _ in deliveries)
    unknown = any(d is D.UNKNOWN for d, _ in deliveries)
    if unknown:
        assert status is P.NEEDS_ATTENTION
    elif pending:
        assert status in (P.SCHEDULED, P.PUBLISHING)
    else:
        assert status in (P.PUBLISHED, P.PARTIALLY_PUBLISHED, P.FAILED, P.CANCELLED)
