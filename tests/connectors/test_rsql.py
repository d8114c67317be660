"""RSQL building: values can never change the structure of a filter."""

from __future__ import annotations

import pytest

from connectors import rsql


@pytest.mark.parametrize(
    ("value", "quoted"),
    [
        ("abc", "abc"),
        ("a.b-c_d@x.com", "a.b-c_d@x.com"),
        ("0b1e7c2a-3f4d-4e5f-8a9b-0c1d2e3f4a5b", "0b1e7c2a-3f4d-4e5f-8a9b-0c1d2e3f4a5b"),
        ("", '""'),
        ("a b", '"a b"'),
        ("O'Neil", '"O\'Neil"'),
        ('say "hi"', '"say \\"hi\\""'),
        ("back\\slash", '"back\\\\slash"'),
        ("a,b;c", '"a,b;c"'),
        ("x==y", '"x==y"'),
        ("(paren)", '"(paren)"'),
        ("wild*card", '"wild*card"'),
        ("a+b@x.com", '"a+b@x.com"'),
        ("!~<>", '"!~<>"'),
    ],
)
def test_quote(value: str, quoted: str) -> None:
    assert rsql.quote(value) == quoted


def test_builders() -> None:
    assert rsql.eq("billing.first_name", "Ann") == "billing.first_name==Ann"
    assert rsql.in_("id", ["a", "b c"]) == 'id=in=(a,"b c")'
    assert rsql.and_("a==1", "b==2,c==3", "") == "a==1;(b==2,c==3)"
    assert rsql.and_("a==1", "(b==2,c==3)") == "a==1;(b==2,c==3)"
    assert rsql.and_("a==1", 'b=="x,y"') == 'a==1;b=="x,y"'
    assert rsql.and_("a==1", "b==2;c==3") == "a==1;b==2;c==3"
    assert rsql.all_equal({"a": "1", "b.c": "x y"}) == 'a==1;b.c=="x y"'


@pytest.mark.parametrize("bad", ["", "a b", "a;b", "1abc", "a..b", "a==b"])
def test_field_names_are_validated(bad: str) -> None:
    with pytest.raises(ValueError):
        rsql.field(bad)


def test_in_needs_values() -> None:
    with pytest.raises(ValueError):
        rsql.in_("id", [])


def test_encoded_len_matches_httpx() -> None:
    import httpx

    text = 'entity_id==e;id=in=("a b",c)'
    url = httpx.URL("http://h/", params={"search": text})
    assert rsql.encoded_len(text) == len(url.query) - len(b"search=")
