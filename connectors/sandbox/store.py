"""In-memory state of both fake providers, compact enough for a million customers.

A Verifone customer is one ``__slots__`` object holding its ``CustomerResponse`` already
serialised (orjson bytes): a GET sends those bytes as they are, a list joins them, and a
search decodes only the records it cannot decide from the slots (id, entity, timestamps).
Dicts per record would cost about three times the memory.
"""

from __future__ import annotations

import random
import sys
import time
import uuid
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Any

import orjson

from connectors.sandbox.query import Query, getter, index_lookups
from connectors.sandbox.validation import SUMUP_ADDRESS, SUMUP_DETAILS

INDEXED = ("email_address", "company_registration_number", "company_name")
"""Fields besides ``id`` with an exact-match index (``==`` / ``=in=`` avoid a full scan)."""
_CACHE_SIZE = 8


def stored(data: Any) -> bytes:
    """JSON bytes sized to their content, for keeping.

    orjson hands back its whole output buffer (about 4 KB even for a 500-byte document);
    kept a million times that is 4 GB. The copy is exactly as long as the JSON.
    """
    return bytes(memoryview(orjson.dumps(data)))


def format_ms(ms: int) -> str:
    """``2024-05-01T10:00:00.123Z`` (UTC, millisecond precision, as stored)."""
    moment = datetime.fromtimestamp(ms / 1000, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


class IdSource:
    """UUIDs and tokens; reproducible when seeded, so a seeded run names things the same."""

    def __init__(self, seed: int | None) -> None:
        self._rng = random.Random(seed)

    def uuid(self) -> str:
        """A random (version 4) UUID in canonical lower-case form."""
        return str(uuid.UUID(int=self._rng.getrandbits(128), version=4))

    def number(self, below: int) -> int:
        """A random integer in ``[0, below)``."""
        return self._rng.randrange(below)


class VRecord:
    """One Verifone customer; ``doc`` is its ``CustomerResponse`` as JSON bytes."""

    __slots__ = ("created_ms", "doc", "entity_id", "id", "seq", "updated_ms")

    def __init__(
        self, id: str, entity_id: str, seq: int, created_ms: int, updated_ms: int, doc: bytes
    ) -> None:
        self.id = id
        self.entity_id = entity_id
        self.seq = seq
        self.created_ms = created_ms
        self.updated_ms = updated_ms
        self.doc = doc

    def data(self) -> dict[str, Any]:
        """The decoded ``CustomerResponse``."""
        result: dict[str, Any] = orjson.loads(self.doc)
        return result


class VerifoneStore:
    """Verifone customers by id, in creation order, with exact-match indexes."""

    def __init__(self, ids: IdSource) -> None:
        self.ids = ids
        self._records: dict[str, VRecord] = {}
        self._indexes: dict[str, dict[str, VRecord | list[VRecord]]] = {f: {} for f in INDEXED}
        self._seq = 0
        self._last_ms = 0
        self.version = 0
        self._cache: OrderedDict[tuple[Any, ...], tuple[int, list[VRecord]]] = OrderedDict()
        self.indexed = frozenset(("id", *INDEXED))

    def __len__(self) -> int:
        return len(self._records)

    def __iter__(self) -> Iterator[VRecord]:
        return iter(self._records.values())

    def now_ms(self) -> int:
        """Wall-clock ms, never going backwards within this store."""
        self._last_ms = max(self._last_ms, int(time.time() * 1000))
        return self._last_ms

    def get(self, customer_id: str) -> VRecord | None:
        """The record with this (lower-case) id."""
        return self._records.get(customer_id)

    def create(
        self,
        clean: dict[str, Any],
        *,
        customer_id: str | None = None,
        created_ms: int | None = None,
        updated_ms: int | None = None,
    ) -> VRecord:
        """Store a validated ``CustomerRequest`` under a new (or the given) id."""
        customer_id = customer_id or self.ids.uuid()
        created = self.now_ms() if created_ms is None else created_ms
        updated = created if updated_ms is None else updated_ms
        self._seq += 1
        entity = sys.intern(clean["entity_id"])
        record = VRecord(customer_id, entity, self._seq, created, updated, b"")
        record.doc = self._render(record, clean)
        self._records[customer_id] = record
        self._index(record, clean, add=True)
        self.version += 1
        return record

    def replace(self, record: VRecord, clean: dict[str, Any]) -> VRecord:
        """Replace every field of ``record`` with ``clean`` (Verifone's update)."""
        self._index(record, record.data(), add=False)
        record.entity_id = sys.intern(clean["entity_id"])
        record.updated_ms = self.now_ms()
        record.doc = self._render(record, clean)
        self._index(record, clean, add=True)
        self.version += 1
        return record

    def delete(self, record: VRecord) -> None:
        """Remove ``record``."""
        self._index(record, record.data(), add=False)
        del self._records[record.id]
        self.version += 1

    def clear(self) -> None:
        """Forget every customer."""
        self._records.clear()
        for index in self._indexes.values():
            index.clear()
        self._cache.clear()
        self.version += 1

    def search(
        self,
        query: Query,
        entities: frozenset[str] | None,
        order_criteria: str,
        descending: bool,
        cache_key: tuple[Any, ...],
    ) -> list[VRecord]:
        """Every record matching ``query`` within ``entities`` (``None``: all), ordered.

        Ties and records lacking the sort field are ordered by creation; a missing value
        sorts after every present one (``ASC``) or before (``DESC``), as in SQL.
        """
        cached = self._cache.get(cache_key)
        if cached is not None and cached[0] == self.version:
            self._cache.move_to_end(cache_key)
            return cached[1]
        probes = index_lookups(query.node, self.indexed)
        candidates = self._records.values() if probes is None else self._probe(probes)
        by_field = order_criteria != "created_at"
        need_doc = query.needs_doc or by_field
        get = getter(order_criteria)
        keyed: list[tuple[Any, ...]] = []
        predicate = query.predicate
        for record in candidates:
            if entities is not None and record.entity_id not in entities:
                continue
            doc = orjson.loads(record.doc) if need_doc else None
            if predicate(record, doc):
                if by_field:
                    value = get(record, doc)
                    keyed.append(
                        (value is None, value if value is not None else 0, record.seq, record)
                    )
                else:
                    keyed.append((record.seq, record))
        keyed.sort(key=lambda item: item[:-1], reverse=descending)
        result = [item[-1] for item in keyed]
        if probes is None:
            self._cache[cache_key] = (self.version, result)
            while len(self._cache) > _CACHE_SIZE:
                self._cache.popitem(last=False)
        return result

    def _probe(self, probes: list[tuple[str, tuple[str, ...]]]) -> Iterable[VRecord]:
        found: dict[str, VRecord] = {}
        for field, values in probes:
            for value in values:
                if field == "id":
                    record = self._records.get(value)
                    if record is not None:
                        found[record.id] = record
                    continue
                hit = self._indexes[field].get(value)
                if isinstance(hit, VRecord):
                    found[hit.id] = hit
                elif hit is not None:
                    found.update((r.id, r) for r in hit)
        return found.values()

    def _render(self, record: VRecord, clean: dict[str, Any]) -> bytes:
        return stored(
            {
                "id": record.id,
                **clean,
                "created_at": format_ms(record.created_ms),
                "updated_at": format_ms(record.updated_ms),
            }
        )

    def _index(self, record: VRecord, data: dict[str, Any], *, add: bool) -> None:
        for field, index in self._indexes.items():
            value = data.get(field)
            if not isinstance(value, str):
                continue
            hit = index.get(value)
            if add:
                if hit is None:
                    index[value] = record
                elif isinstance(hit, VRecord):
                    index[value] = [hit, record]
                else:
                    hit.append(record)
            elif hit is record:
                del index[value]
            elif isinstance(hit, list):
                hit.remove(record)
                if len(hit) == 1:
                    index[value] = hit[0]


class SRecord:
    """One SumUp customer; ``details`` is its ``personal_details`` as JSON bytes, if any."""

    __slots__ = ("customer_id", "details")

    def __init__(self, customer_id: str, details: bytes | None) -> None:
        self.customer_id = customer_id
        self.details = details

    def to_json(self) -> bytes:
        """The ``Customer`` object."""
        if self.details is None:
            return orjson.dumps({"customer_id": self.customer_id})
        return orjson.dumps(
            {"customer_id": self.customer_id, "personal_details": orjson.Fragment(self.details)}
        )

    def data(self) -> dict[str, Any]:
        """The decoded ``Customer``."""
        result: dict[str, Any] = orjson.loads(self.to_json())
        return result


class SumUpStore:
    """SumUp customers by their client-chosen id, and their payment instruments."""

    def __init__(self, ids: IdSource) -> None:
        self.ids = ids
        self.customers: dict[str, SRecord] = {}
        self.instruments: dict[str, list[dict[str, Any]]] = {}

    def clear(self) -> None:
        """Forget every customer and instrument."""
        self.customers.clear()
        self.instruments.clear()

    def create(self, customer_id: str, details: dict[str, Any] | None) -> SRecord | None:
        """Store a new customer; ``None`` if the id is taken."""
        if customer_id in self.customers:
            return None
        record = SRecord(customer_id, None if details is None else stored(details))
        self.customers[customer_id] = record
        return record

    def update(self, record: SRecord, patch: dict[str, Any]) -> SRecord:
        """Overwrite the given personal details, keep the rest ("only overwrites the
        parameters included in the request"). ``address`` merges key by key the same way.
        """
        current: dict[str, Any] = orjson.loads(record.details) if record.details else {}
        for key, value in patch.items():
            if key == "address":
                current["address"] = {**(current.get("address") or {}), **value}
            else:
                current[key] = value
        ordered = {k: current[k] for k in SUMUP_DETAILS if k in current}
        if "address" in ordered:
            address = ordered["address"]
            ordered["address"] = {k: address[k] for k in SUMUP_ADDRESS if k in address}
        record.details = stored(ordered)
        return record
