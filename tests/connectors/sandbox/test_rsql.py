"""The RSQL grammar and what a search means over stored customers (no HTTP)."""

from __future__ import annotations

import re
from typing import Any

import pytest

from connectors.sandbox.query import compile_query, parse_instant
from connectors.sandbox.rsql import And, Comparison, Or, RsqlError, parse
from connectors.sandbox.store import IdSource, VerifoneStore


def c(selector: str, op: str, *args: str) -> Comparison:
    return Comparison(selector, op, args)


@pytest.mark.parametrize(
    ("text", "tree"),
    [
        ("id==1", c("id", "==", "1")),
        ("a==1;b==2,c==3", Or((And((c("a", "==", "1"), c("b", "==", "2"))), c("c", "==", "3")))),
        ("a==1,b==2;c==3", Or((c("a", "==", "1"), And((c("b", "==", "2"), c("c", "==", "3")))))),
        ("a==1;(b==2,c==3)", And((c("a", "==", "1"), Or((c("b", "==", "2"), c("c", "==", "3")))))),
        ("((a==1))", c("a", "==", "1")),
        ("id=in=(x,'y z',\"w\")", c("id", "=in=", "x", "y z", "w")),
        ("id=out=x", c("id", "=out=", "x")),
        ("a=='it\\'s'", c("a", "==", "it's")),
        ('a=="semi;colon,comma"', c("a", "==", "semi;colon,comma")),
        ("a =regex= '^A.*'", c("a", "=regex=", "^A.*")),
        ("d>2024-01-01", c("d", "=gt=", "2024-01-01")),
        ("d>=2024-01-01", c("d", "=ge=", "2024-01-01")),
        ("d<2024-01-01", c("d", "=lt=", "2024-01-01")),
        ("d<=2024-01-01", c("d", "=le=", "2024-01-01")),
        ("e==a+b@x.com", c("e", "==", "a+b@x.com")),
    ],
)
def test_grammar(text: str, tree: Any) -> None:
    assert parse(text) == tree


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("(a==1", "unbalanced parentheses"),
        ("a==1)", "unbalanced parentheses"),
        ("a==1;", "expected a field name"),
        ("", "expected a field name"),
        ("a==", "expected a value"),
        ("a 1", "expected an operator"),
        ("a=in=(1,2", "expected ',' or ')'"),
        ("a=='open", "unterminated quoted value"),
        ("a==1 b==2", "unexpected 'b'"),
    ],
)
def test_syntax_errors_name_the_problem(text: str, message: str) -> None:
    with pytest.raises(RsqlError, match=re.escape(message)):
        parse(text)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("nickname==x", "unknown field 'nickname'"),
        ("billing.nickname==x", "unknown field"),
        ("company_name=like=x", "unknown operator '=like='"),
        ("company_name=gt=x", "not allowed on company_name"),
        ("created_at=regex=x", "not allowed on created_at"),
        ("company_name==(a,b)", "exactly one argument"),
        ("created_at=gt=yesterday", "not a date"),
        ("shipping.phone==+44-20", "is a number"),
        ("company_name=regex='('", "invalid regular expression"),
    ],
)
def test_semantic_errors_name_the_problem(text: str, message: str) -> None:
    with pytest.raises(RsqlError, match=re.escape(message)):
        compile_query(parse(text))


def test_date_values_are_a_day_or_an_instant() -> None:
    lo, hi = parse_instant("2024-05-01")
    assert hi - lo == 86_400_000
    lo, hi = parse_instant("2024-05-01T10:00:00.250Z")
    assert hi - lo == 1
    assert parse_instant("2024-05-01T12:00:00.250+02:00") == (lo, hi)
    assert parse_instant("2024-05-01T10:00:00.250")[0] == lo  # no offset: UTC


MAY_1 = parse_instant("2024-05-01T10:00:00.000Z")[0]


@pytest.fixture
def store() -> VerifoneStore:
    s = VerifoneStore(IdSource(1))
    rows: list[dict[str, Any]] = [
        {
            "company_name": "Alpha",
            "email_address": "a@x.com",
            "shipping": {"phone": "+44 (20) 7946-0000"},
        },
        {"company_name": "Beta", "email_address": "b@x.com", "billing": {"city": "Berlin"}},
        {"company_name": "Gamma", "email_address": "a@x.com", "tax": {"identifier": "123"}},
        {"company_name": "Delta", "entity_id": "other"},
    ]
    for n, row in enumerate(rows):
        s.create({"entity_id": "e1", **row}, created_ms=MAY_1 + n * 86_400_000)
    return s


def names(
    store: VerifoneStore, text: str, order: str = "created_at", desc: bool = False
) -> list[str]:
    query = compile_query(parse(text))
    found = store.search(query, None, order, desc, (text, order, desc))
    return [r.data().get("company_name", "?") for r in found]


@pytest.mark.parametrize(
    ("search", "expected"),
    [
        ("email_address==a@x.com", ["Alpha", "Gamma"]),
        ("email_address==A@x.com", []),
        ("email_address!=a@x.com", ["Beta", "Delta"]),
        ("company_name=in=(Beta,Delta,Omega)", ["Beta", "Delta"]),
        ("company_name=out=(Beta,Delta)", ["Alpha", "Gamma"]),
        ("company_name=regex=^[AB]", ["Alpha", "Beta"]),
        ("company_name=regex=et", ["Beta"]),
        ("billing.city==Berlin", ["Beta"]),
        ("billing.city!=Berlin", ["Alpha", "Gamma", "Delta"]),
        ("billing.city=out=(Berlin)", ["Alpha", "Gamma", "Delta"]),
        ("tax.identifier==123", ["Gamma"]),
        ("entity_id==other", ["Delta"]),
        ("email_address==a@x.com;company_name==Gamma", ["Gamma"]),
        ("company_name==Alpha,company_name==Delta;entity_id==other", ["Alpha", "Delta"]),
        ("(company_name==Alpha,company_name==Delta);entity_id==other", ["Delta"]),
        ("created_at==2024-05-02", ["Beta"]),
        ("created_at=gt=2024-05-02", ["Gamma", "Delta"]),
        ("created_at=ge=2024-05-02", ["Beta", "Gamma", "Delta"]),
        ("created_at=lt=2024-05-02", ["Alpha"]),
        ("created_at=le=2024-05-02", ["Alpha", "Beta"]),
        ("created_at==2024-05-01T10:00:00.000Z", ["Alpha"]),
        ("created_at=gt=2024-05-01T10:00:00.000Z", ["Beta", "Gamma", "Delta"]),
        ("created_at=in=(2024-05-01,2024-05-04)", ["Alpha", "Delta"]),
        ("created_at=out=(2024-05-01,2024-05-04)", ["Beta", "Gamma"]),
        ("updated_at=ge=2024-05-03", ["Gamma", "Delta"]),
        ("shipping.phone==442079460000", ["Alpha"]),
        ("shipping.phone=gt=1", ["Alpha"]),
        ("shipping.phone!=1", ["Alpha", "Beta", "Gamma", "Delta"]),
    ],
)
def test_search_semantics(store: VerifoneStore, search: str, expected: list[str]) -> None:
    assert names(store, search) == expected


def test_id_search_ignores_case_and_uses_the_index(store: VerifoneStore) -> None:
    ids = [r.id for r in store]
    upper = ",".join(i.upper() for i in ids[:2])
    assert names(store, f"id=in=({upper},00000000-0000-4000-8000-000000000000)") == [
        "Alpha",
        "Beta",
    ]
    assert names(store, f"id=={ids[3]}") == ["Delta"]


def test_ordering(store: VerifoneStore) -> None:
    everything = "entity_id=in=(e1,other)"
    assert names(store, everything) == ["Alpha", "Beta", "Gamma", "Delta"]
    assert names(store, everything, desc=True) == ["Delta", "Gamma", "Beta", "Alpha"]
    assert names(store, everything, "company_name") == ["Alpha", "Beta", "Delta", "Gamma"]
    # Missing values sort last ascending and first descending, as in SQL.
    assert names(store, everything, "billing.city") == ["Beta", "Alpha", "Gamma", "Delta"]
    assert names(store, everything, "billing.city", desc=True) == [
        "Delta",
        "Gamma",
        "Alpha",
        "Beta",
    ]


def test_indexes_follow_updates_and_deletes(store: VerifoneStore) -> None:
    alpha, _, gamma, _ = list(store)
    store.replace(alpha, {"entity_id": "e1", "company_name": "Alpha", "email_address": "new@x.com"})
    assert names(store, "email_address==a@x.com") == ["Gamma"]
    assert names(store, "email_address==new@x.com") == ["Alpha"]
    store.delete(gamma)
    assert names(store, "email_address==a@x.com") == []
    assert names(store, "company_name==Gamma") == []


def test_index_and_scan_agree(store: VerifoneStore) -> None:
    """The same search through the index and through a full scan finds the same records."""
    for text in (
        "email_address==a@x.com",
        "company_name=in=(Alpha,Delta)",
        "email_address=in=(a@x.com,b@x.com);company_name!=Beta",
    ):
        indexed = names(store, text)
        scanned = names(store, f"({text});created_at=ge=2000-01-01,id==none")
        assert indexed == scanned


def test_results_are_cached_until_the_data_changes(store: VerifoneStore) -> None:
    assert names(store, "company_name=regex=a") == ["Alpha", "Beta", "Gamma", "Delta"]
    store.create({"entity_id": "e1", "company_name": "Epsilona"})
    assert names(store, "company_name=regex=a")[-1] == "Epsilona"
