"""The look-up after an unknown Verifone create: only an equal, un-owned record is adopted."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import httpx

from connectors.providers.verifone.client import equals_sent, request_fields, scalar_fields
from tests.connectors.fakes import json_response
from tests.connectors.test_verifone import PAYLOAD, _posts, _record, _run

SENT = scalar_fields(PAYLOAD)


def _unknown_then(found: list[dict[str, Any]]) -> Any:
    """A server whose create answers 503 (nothing said) and whose search finds ``found``."""
    posts = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal posts
        if request.method == "POST":
            posts += 1
            if posts == 1:
                return json_response(503, {"code": 503, "message": "busy"})
            return json_response(200, _record("new-1"))
        return json_response(200, found)

    return handler


def test_equal_means_no_field_more_and_none_fewer() -> None:
    assert equals_sent(_record("a"), SENT)
    richer = _record("b", phone_number="+49 30 1111111")
    assert not equals_sent(richer, SENT)
    sparse = _record("c")
    del sparse["email_address"]
    assert not equals_sent(sparse, SENT)


def test_server_set_fields_and_empty_echoes_are_not_fields() -> None:
    echoed = _record("a", phone_number=None, company_name="", shipping={})
    assert request_fields(echoed) == SENT
    assert equals_sent(echoed, SENT)
    assert "id" not in request_fields(echoed) and "created_at" not in request_fields(echoed)


def test_a_richer_record_containing_what_was_sent_is_not_adopted() -> None:
    # The sparse-row case: the search (AND of the sent fields) finds a customer that has
    # every sent field and an e-mail more. It is another customer: create again.
    richer = _record("rich", phone_number="+49 30 1111111")
    result, rec, _, _ = _run(_unknown_then([richer]), lambda c: c.create(PAYLOAD))
    assert (result.outcome, result.remote_id) == ("created", "new-1")
    assert len(_posts(rec)) == 2


def test_a_match_another_key_owns_is_not_adopted() -> None:
    asked: list[Sequence[str]] = []

    def owned(ids: Sequence[str]) -> set[str]:
        asked.append(list(ids))
        return {"twin"}

    result, rec, _, _ = _run(
        _unknown_then([_record("twin")]), lambda c: c.create(PAYLOAD, owned=owned)
    )
    assert (result.outcome, result.remote_id) == ("created", "new-1")
    assert asked == [["twin"]]
    assert len(_posts(rec)) == 2


def test_owned_matches_are_left_out_before_counting() -> None:
    # Two equal records, one of them another key's: the other one is ours.
    result, rec, _, _ = _run(
        _unknown_then([_record("twin"), _record("ours")]),
        lambda c: c.create(PAYLOAD, owned=lambda ids: {"twin"} & set(ids)),
    )
    assert (result.outcome, result.remote_id) == ("adopted", "ours")
    assert len(_posts(rec)) == 1


def test_without_the_hook_two_equal_records_stay_ambiguous() -> None:
    result, _, _, _ = _run(
        _unknown_then([_record("twin"), _record("ours")]), lambda c: c.create(PAYLOAD)
    )
    assert result.outcome == "ambiguous" and result.candidates == ("ours", "twin")


def test_equal_matches_are_oldest_first_and_filtered() -> None:
    found = [_record("old"), _record("rich", phone_number="+1"), _record("young")]
    result, _, _, _ = _run(
        lambda request: json_response(200, found), lambda c: c.equal_matches(PAYLOAD)
    )
    assert [r["id"] for r in result] == ["old", "young"]
