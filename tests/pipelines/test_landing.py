"""The landing folder's rules (pipelines/landing.py), against a small model of them."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipelines import landing
from pipelines.landing import Found, choose, landing_folders_missing, move, night_of, scan

NIGHTS = ["20261203", "20261204", "20261205", "20261205T0230", "20261206"]
HASHES = [f"h{i}" for i in range(8)]


@st.composite
def folders(draw: st.DrawFn) -> tuple[list[Found], frozenset[str], str | None]:
    """A landing folder (names, nights, hashes, files still being written), the hashes of
    files synced before and the newest night synced."""
    count = draw(st.integers(0, 9))
    found = []
    for n in range(count):
        night = draw(st.sampled_from(NIGHTS))
        writing = draw(st.sampled_from([False, False, True]))
        sha = None if writing else draw(st.sampled_from(HASHES))
        found.append(Found(Path(f"in/customers-{night}-{n}.csv"), night, n, writing, sha))
    seen = frozenset(draw(st.sets(st.sampled_from(HASHES), max_size=4)))
    synced_night = draw(st.none() | st.sampled_from(NIGHTS))
    return found, seen, synced_night


def model(
    found: list[Found], seen: frozenset[str], synced_night: str | None, newest_only: bool
) -> dict[Path, str]:
    """Each file's fate, decided file by file from the README's wording."""
    fate: dict[Path, str] = {}

    def night_busy(night: str) -> bool:
        return any(other.writing for other in found if other.night == night)

    def new(f: Found) -> bool:
        newer = synced_night is None or f.night > synced_night
        return not night_busy(f.night) and f.sha256 not in seen and newer

    newest = max((f.night for f in found if new(f)), default=None)
    for f in found:
        if night_busy(f.night):
            fate[f.path] = "waiting"
        elif f.sha256 in seen:
            fate[f.path] = "synced"
        elif not new(f) or (newest_only and f.night != newest):
            fate[f.path] = "superseded"
        else:
            fate[f.path] = "read"
    return fate


def fates(choice: landing.Choice) -> dict[Path, str]:
    out: dict[Path, str] = {}
    for name in ("read", "superseded", "synced", "waiting"):
        for f in getattr(choice, name):
            assert f.path not in out, f"{f.path} in two groups"
            out[f.path] = name
    return out


@settings(max_examples=300, deadline=None)
@given(folders(), st.booleans())
def test_each_file_has_the_fate_the_model_gives_it(
    folder: tuple[list[Found], frozenset[str], str | None], newest_only: bool
) -> None:
    found, seen, synced_night = folder
    choice = choose(found, seen=seen, synced_night=synced_night, newest_only=newest_only)
    assert fates(choice) == model(found, seen, synced_night, newest_only)


@settings(max_examples=300, deadline=None)
@given(folders())
def test_two_nights_never_mix_and_nothing_is_read_twice(
    folder: tuple[list[Found], frozenset[str], str | None],
) -> None:
    found, seen, synced_night = folder
    choice = choose(found, seen=seen, synced_night=synced_night)
    assert len({f.night for f in choice.read}) <= 1
    assert choice.night == (choice.read[0].night if choice.read else None)
    assert not any(f.sha256 in seen for f in choice.read)
    assert not any(f.writing for f in (*choice.read, *choice.superseded, *choice.synced))
    if synced_night is not None:
        assert all(f.night > synced_night for f in choice.read)  # never an older extract
    # Every file is in exactly one group, and the ones being written are never moved.
    assert sorted(fates(choice)) == sorted(f.path for f in found)


def test_a_night_still_being_written_waits_whole_and_an_older_complete_one_is_read() -> None:
    files = [
        Found(Path("c-20261205.csv"), "20261205", 1, False, "a"),
        Found(Path("c-20261206-1.csv"), "20261206", 1, False, "b"),
        Found(Path("c-20261206-2.csv.part"), "20261206", 1, True),
    ]
    choice = choose(files, seen=set(), synced_night=None)
    assert [f.path.name for f in choice.read] == ["c-20261205.csv"]
    assert {f.path.name for f in choice.waiting} == {"c-20261206-1.csv", "c-20261206-2.csv.part"}


@pytest.mark.parametrize(
    ("name", "night"),
    [
        ("customers-20261205.parquet", "20261205"),
        ("customers-2026-12-05-part-2.parquet", "20261205"),
        ("customers_20261205T0230.csv", "20261205T0230"),
        ("customers-202612050230.csv", "20261205T0230"),
        ("customers-20261205-01.csv", "20261205"),
        ("x20261205y.csv", "20261205"),
    ],
)
def test_the_night_is_the_stamp_in_the_name(name: str, night: str) -> None:
    assert night_of(name, 0.0) == night


def test_a_name_without_a_stamp_has_the_night_of_its_modification_date() -> None:
    when = datetime(2026, 12, 5, 23, 59, tzinfo=UTC).timestamp()
    assert night_of("customers.csv", when) == "20261205"
    assert night_of("customers-123.csv", when) == "20261205"


@settings(max_examples=50, deadline=None)
@given(st.lists(st.binary(max_size=20), min_size=1, max_size=5))
def test_a_move_never_overwrites_a_file_of_the_same_name(
    tmp_path_factory: pytest.TempPathFactory, contents: list[bytes]
) -> None:
    root = tmp_path_factory.mktemp("move")
    moved = []
    for content in contents:
        source = root / "incoming" / "customers-20261205.csv"
        source.parent.mkdir(exist_ok=True)
        source.write_bytes(content)
        moved.append(move(source, root / "processed"))
        assert not source.exists()
    assert [p.read_bytes() for p in moved] == contents  # each file kept, none replaced
    assert [p.name for p in moved][:3] == [
        "customers-20261205.csv",
        "customers-20261205.1.csv",
        "customers-20261205.2.csv",
    ][: len(contents)]


def test_scan_sees_part_files_growing_files_and_hashes_the_rest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    done = tmp_path / "customers-20261205.csv"
    done.write_text("external_id\nA\n")
    growing = tmp_path / "customers-20261206.csv"
    growing.write_text("external_id\n")
    (tmp_path / "customers-20261207.csv.part").write_text("external_id\n")
    (tmp_path / "notes.txt").write_text("not matched")

    def writer_goes_on(seconds: float) -> None:
        assert seconds == 0.5
        with growing.open("a") as handle:
            handle.write("B\n")  # the CRM is still writing during the second look

    monkeypatch.setattr(landing.time, "sleep", writer_goes_on)
    (found,) = scan([[str(tmp_path / "customers-*.csv")]], settle_s=0.5)
    by_name = {f.path.name: f for f in found}
    assert set(by_name) == {done.name, growing.name, "customers-20261207.csv.part"}
    assert not by_name[done.name].writing and by_name[done.name].sha256 == landing.sha256(done)
    assert by_name[growing.name].writing and by_name[growing.name].sha256 is None
    assert by_name["customers-20261207.csv.part"].writing
    assert by_name["customers-20261207.csv.part"].night == "20261207"


def test_a_missing_landing_folder_is_named(tmp_path: Path) -> None:
    os.makedirs(tmp_path / "incoming")
    assert landing_folders_missing([str(tmp_path / "incoming" / "c-*.csv")]) == []
    missing = str(tmp_path / "nope" / "c-*.csv")
    assert landing_folders_missing([missing]) == [str(tmp_path / "nope")]


def test_synced_means_a_finished_run_or_files_moved_never_a_dry_run_or_a_guard_stop(
    tmp_path: Path,
) -> None:
    from pipelines.state.store import StateStore

    def entry(sha: str, night: str, **more: str) -> dict[str, object]:
        return {"path": f"c-{night}.csv", "sha256": sha, "night": night, **more}

    with StateStore(tmp_path / "state.duckdb") as store:
        cases = [
            # (dry run, status, inputs)
            (False, "done", [entry("a", "20261201")]),
            (True, "planned", [entry("b", "20261209")]),  # a dry run synced nothing
            (False, "stopped", [entry("c", "20261208")]),  # a guard stopped it: nothing moved
            (False, "crashed", [entry("d", "20261203", processed="p/c.csv")]),  # moved
            (False, "done", [entry("e", "20261207", kind="instruments")]),
        ]
        for dry_run, status, inputs in cases:
            run_id = store.begin_run(
                flow="sync",
                target="sumup",
                mode="mirror",
                dry_run=dry_run,
                extract_paths=[],
                params={},
            )
            store.record_provenance(run_id, {"inputs": inputs})
            store.finish_run(run_id, status=status, exit_code=0, summary={})
        other = store.begin_run(
            flow="sync",
            target="verifone",
            mode="mirror",
            dry_run=False,
            extract_paths=[],
            params={},
        )
        store.record_provenance(other, {"inputs": [entry("f", "20261210")]})
        store.finish_run(other, status="done", exit_code=0, summary={})
        asking = store.begin_run(
            flow="sync",
            target="sumup",
            mode="mirror",
            dry_run=False,
            extract_paths=[],
            params={},
        )
        seen, night = store.synced_inputs("sumup", other_than=asking)
    assert seen == {"a", "d", "e"}
    assert night == "20261203"  # instruments' nights do not count, nor other targets'


def test_the_run_artifact_says_what_became_of_each_file() -> None:
    from pipelines.summary import landing_markdown

    choice = choose(
        [
            Found(Path("in/c-20261205.csv"), "20261205", 1, False, "a"),
            Found(Path("in/c-20261206.csv"), "20261206", 1, False, "b"),
            Found(Path("in/c-20261207.csv.part"), "20261207", 1, True),
        ],
        seen=set(),
        synced_night=None,
    )
    report = landing.Landing(customers=choice, moved={"in/c-20261206.csv": "p/c-20261206.csv"})
    lines = landing_markdown(report.report())
    assert "#### Landing folder (night 20261206)" in lines
    assert "| `in/c-20261206.csv` | customers | read | `p/c-20261206.csv` |" in lines
    assert "| `in/c-20261205.csv` | customers | superseded (not read) |  |" in lines
    assert "| `in/c-20261207.csv.part` | customers | still being written (left) |  |" in lines
    nothing = landing.Landing(customers=choose([], seen=set(), synced_night=None))
    assert landing_markdown(nothing.report())[-1] == "No file arrived."


DATES = [("2026", "12", "03"), ("2026", "12", "04"), ("2026", "12", "06")]
CONTENTS = [b"external_id\nA\n", b"external_id\nB\n", b"external_id\nC\n", b"external_id\n"]


@st.composite
def dropped(draw: st.DrawFn) -> list[tuple[str, str, bytes, bool]]:
    """Files as a CRM drops them: (name, night, content, still being written)."""
    files = {}
    for _ in range(draw(st.integers(0, 7))):
        year, month, day = draw(st.sampled_from(DATES))
        stamp = draw(st.sampled_from([f"{year}{month}{day}", f"{year}-{month}-{day}"]))
        part = draw(st.sampled_from(["", "-part1", "-part2", "_2"]))
        writing = draw(st.sampled_from([False, False, False, True]))
        name = f"customers-{stamp}{part}.csv" + (".part" if writing else "")
        files[name] = (name, f"{year}{month}{day}", draw(st.sampled_from(CONTENTS)), writing)
    return list(files.values())


@settings(max_examples=60, deadline=None)
@given(
    dropped(),
    st.sets(st.sampled_from(CONTENTS), max_size=2),
    st.none() | st.sampled_from(["20261203", "20261205"]),
)
def test_a_folder_of_real_files_is_split_as_the_model_says(
    tmp_path_factory: pytest.TempPathFactory,
    files: list[tuple[str, str, bytes, bool]],
    synced: set[bytes],
    synced_night: str | None,
) -> None:
    import hashlib

    folder = tmp_path_factory.mktemp("incoming")
    (folder / "notes.txt").write_text("not an extract")
    expected = []
    for name, night, content, writing in files:
        (folder / name).write_bytes(content)
        digest = None if writing else hashlib.sha256(content).hexdigest()
        expected.append(Found(folder / name, night, len(content), writing, digest))
    seen = {hashlib.sha256(c).hexdigest() for c in synced}

    (found,) = scan([[str(folder / "customers-*.csv")]], settle_s=0)

    assert sorted(found, key=lambda f: f.path) == sorted(expected, key=lambda f: f.path)
    choice = choose(found, seen=seen, synced_night=synced_night)
    assert fates(choice) == model(expected, frozenset(seen), synced_night, True)
