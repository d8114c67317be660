"""Which runs share a rate limit: generated fleets where tenants reuse credential references
or join declared groups; and the rate groups' errors in the tenants file."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipelines.shared_limits import (
    RATE_PREFIX,
    SharedLimit,
    all_shared_limits,
    permit_group,
    shared_limits,
)
from pipelines.tenants import TenantsError, parse_tenants

FILE = Path("/platform/tenants.toml")
REFS = ["KEY_A", "KEY_B", "KEY_C", "block:key-d"]


def _fleet(
    keys: list[int],
    rates: list[int | None],
    groups: list[bool],
    group_rate: int,
    bursts: list[int | None] | None = None,
    group_burst: int | None = None,
) -> str:
    parts = [f'[rate_groups.eu]\ntarget = "sumup"\nrate = {group_rate}\n']
    if group_burst is not None:
        parts.append(f"burst = {group_burst}\n")
    for i, (key, rate, member) in enumerate(zip(keys, rates, groups, strict=True)):
        parts.append(f'[[tenants]]\nid = "t{i}"\nextract = "x.csv"')
        if rate is not None:
            parts.append(f"rate_limit = {rate}")
        if bursts is not None and bursts[i] is not None:
            parts.append(f"rate_burst = {bursts[i]}")
        if member:
            parts.append('rate_groups = ["eu"]')
        parts.append(f'[tenants.sumup]\napi_key = "{REFS[key]}"\n')
    return "\n".join(parts)


@settings(max_examples=60, deadline=None)
@given(
    st.integers(1, 8).flatmap(
        lambda n: st.tuples(
            st.lists(st.integers(0, len(REFS) - 1), min_size=n, max_size=n),
            st.lists(st.one_of(st.none(), st.integers(0, 20)), min_size=n, max_size=n),
            st.lists(st.booleans(), min_size=n, max_size=n),
        )
    ),
    st.integers(1, 50),
)
def test_runs_on_one_reference_share_its_lowest_rate_and_members_share_the_group(
    fleet: tuple[list[int], list[int | None], list[bool]], group_rate: int
) -> None:
    keys, rates, groups = fleet
    tenants = parse_tenants(_fleet(keys, rates, groups, group_rate), FILE)
    found = {s.name: s for s in all_shared_limits(tenants)}
    group = found.pop(f"{RATE_PREFIX}-eu")
    assert group.rate == group_rate
    assert group.members == tuple(f"t{i}/sumup" for i, m in enumerate(groups) if m)
    expected = set()
    for key in set(keys):
        members = [i for i, k in enumerate(keys) if k == key]
        positive = [r for i in members if (r := rates[i])]
        if len(members) > 1 and positive:
            expected.add((tuple(f"t{i}/sumup" for i in members), float(min(positive))))
    assert {(s.members, s.rate) for s in found.values()} == expected
    for shared in found.values():
        assert shared.name.startswith(f"{RATE_PREFIX}-sumup-cred-")
        assert all(ref not in shared.name for ref in REFS)  # a hash, not the reference
        assert 1 <= shared.group <= shared.limit
    for i in range(len(keys)):
        mine = shared_limits(tenants, f"t{i}", "sumup")
        assert all(f"t{i}/sumup" in s.members for s in mine)
        assert (group in mine) == groups[i]


@pytest.mark.parametrize(
    ("text", "field", "problem"),
    [
        ("rate_groups = 3\n", "rate_groups", "must be a table"),
        ('[rate_groups.EU]\ntarget = "sumup"\nrate = 1\n', "rate_groups.EU", "lower-case"),
        ('[rate_groups.eu]\ntarget = "paypal"\nrate = 1\n', "rate_groups.eu.target", "choose"),
        ('[rate_groups.eu]\ntarget = "sumup"\nrate = 0\n', "rate_groups.eu.rate", "> 0"),
        ('[rate_groups.eu]\ntarget = "sumup"\n', "rate_groups.eu.rate", "> 0"),
        (
            '[rate_groups.eu]\ntarget = "sumup"\nrate = 1\nbursts = 2\n',
            "rate_groups.eu.bursts",
            "unknown",
        ),
        (
            '[rate_groups.eu]\ntarget = "sumup"\nrate = 1\nburst = 0\n',
            "rate_groups.eu.burst",
            ">= 1",
        ),
        (
            '[rate_groups.eu]\ntarget = "sumup"\nrate = 1\nburst = 2.5\n',
            "rate_groups.eu.burst",
            "whole number",
        ),
        ("[defaults]\nrate_burst = true\n", "defaults.rate_burst", "whole number"),
    ],
)
def test_a_broken_rate_group_names_its_field(text: str, field: str, problem: str) -> None:
    body = text + '[[tenants]]\nid = "a"\nextract = "x.csv"\n[tenants.sumup]\napi_key = "K"\n'
    with pytest.raises(TenantsError) as caught:
        parse_tenants(body, FILE)
    assert f": {field}: " in str(caught.value)
    assert problem in str(caught.value)


@pytest.mark.parametrize(
    ("groups", "problem"),
    [
        ('"asia"', "no [rate_groups.asia] declared"),
        ("[1]", "give a group's name"),
        ('"vf"', "limits verifone, a target this tenant lacks"),
    ],
)
def test_a_tenant_joining_a_bad_group_is_refused(groups: str, problem: str) -> None:
    body = (
        '[rate_groups.vf]\ntarget = "verifone"\nrate = 3\n'
        f'[[tenants]]\nid = "a"\nextract = "x.csv"\nrate_groups = {groups}\n'
        '[tenants.sumup]\napi_key = "K"\n'
    )
    with pytest.raises(TenantsError) as caught:
        parse_tenants(body, FILE)
    assert str(caught.value).startswith(f"{FILE}: tenant a: rate_groups: ")
    assert problem in str(caught.value)


@given(
    st.lists(st.floats(0.1, 1e4), min_size=1, max_size=3),
    st.one_of(st.none(), st.just(0.0), st.floats(0.1, 1e4)),
)
def test_a_permit_group_fits_every_limit_and_a_second_of_the_runs_own_calls(
    rates: list[float], own: float | None
) -> None:
    limits = tuple(SharedLimit(f"l{i}", r, ()) for i, r in enumerate(rates))
    group = permit_group(limits, own)
    assert 1 <= group <= min(limit.limit for limit in limits)
    if own:
        assert group <= max(1, math.ceil(own))
    else:  # adaptive or unlimited: the limits alone decide
        assert group == min(limit.group for limit in limits)


@settings(max_examples=60, deadline=None)
@given(
    st.integers(1, 8).flatmap(
        lambda n: st.tuples(
            st.lists(st.integers(0, 1), min_size=n, max_size=n),
            st.lists(st.one_of(st.none(), st.integers(1, 80)), min_size=n, max_size=n),
            st.lists(st.one_of(st.none(), st.integers(1, 30)), min_size=n, max_size=n),
        )
    ),
    st.integers(1, 80),
    st.one_of(st.none(), st.integers(1, 30)),
)
def test_a_limit_grants_no_more_at_once_than_the_providers_burst(
    fleet: tuple[list[int], list[int | None], list[int | None]],
    group_rate: int,
    group_burst: int | None,
) -> None:
    """A shared credential's limit holds the lowest ``rate_burst`` of its tenants as slots when
    it is below a second of calls, a group its ``burst``; a run's group of permits fits in it."""
    keys, rates, bursts = fleet
    groups = [True] * len(keys)
    text = _fleet(keys, rates, groups, group_rate, bursts, group_burst)
    tenants = parse_tenants(text, FILE)
    found = {s.name: s for s in all_shared_limits(tenants)}
    group = found.pop(f"{RATE_PREFIX}-eu")
    second = math.ceil(group_rate)
    assert group.limit == (second if group_burst is None else min(second, group_burst))
    for shared in found.values():
        members = [int(m.split("/")[0][1:]) for m in shared.members]
        given_bursts = [b for i in members if (b := bursts[i]) is not None]
        rate = min(r for i in members if (r := rates[i]))
        expected = math.ceil(rate) if not given_bursts else min(math.ceil(rate), min(given_bursts))
        assert shared.limit == expected
    for i in range(len(keys)):
        mine = shared_limits(tenants, f"t{i}", "sumup")
        assert 1 <= permit_group(mine, rates[i]) <= min(s.limit for s in mine)
