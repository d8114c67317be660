"""Canonical rows → the providers' request bodies, and their content hashes.

Verifone receives a ``CustomerRequest`` (billing, shipping, tax, ``entity_id`` from
settings); SumUp a ``Customer`` (``customer_id`` derived from ``external_id``, personal
details, the billing address as ``address``). Which column goes where is the field table of
:mod:`transforms.fields`. Payloads are canonical JSON (:mod:`transforms.canonical`). The
content hash is the SHA-256 of the payload's content text (its leaf values under the frozen
codes of :data:`CONTENT_CODES`), so equal payloads hash equal across runs and versions, and
it is computed for millions of rows without building their JSON.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import polars as pl

from transforms.canonical import (
    Tree,
    content_text,
    content_text_expr,
    hex_digest,
    json_object,
    prune,
)
from transforms.canonical import content_key as canonical_content_key
from transforms.canonical import content_key_expr as canonical_content_key_expr
from transforms.canonical import sha256_text as _sha256_text
from transforms.fields import TARGET_FIELDS
from transforms.schema import Target

MAPPED_SCHEMA = pl.Schema(
    {
        "external_id": pl.String,
        "status": pl.String,
        "remote_id": pl.String,
        "payload": pl.String,
        "content_hash": pl.String,
        "content_key": pl.UInt64,
    }
)
"""Columns of :func:`map_rows`' result."""

SUMUP_CUSTOMER_ID_LENGTH = 32

_CONTENT_PATHS = (
    "entity_id",
    "customer_id",
    "title",
    "billing.first_name",
    "billing.middle_name",
    "billing.last_name",
    "company_name",
    "company_registration_number",
    "email_address",
    "phone_number",
    "work_phone",
    "tax.identifier",
    "language",
    *(
        f"{side}.{part}"
        for side in ("billing", "shipping")
        for part in (
            *(("first_name", "middle_name", "last_name") if side == "shipping" else ()),
            "address_1",
            "address_2",
            "address_3",
            "city",
            "state",
            "postal_code",
            "country_code",
            "phone",
        )
    ),
    "personal_details.first_name",
    "personal_details.last_name",
    "personal_details.email",
    "personal_details.phone",
    "personal_details.birth_date",
    "personal_details.tax_id",
    "personal_details.address.line_1",
    "personal_details.address.line_2",
    "personal_details.address.city",
    "personal_details.address.state",
    "personal_details.address.postal_code",
    "personal_details.address.country",
)
CONTENT_CODES: dict[str, str] = {path: f"{i:03d}" for i, path in enumerate(_CONTENT_PATHS, 1)}
"""Payload leaf path → its code in the content text. Append only: a code, once used, keeps
its path for ever, or every stored content hash changes."""


def sumup_customer_id(external_id: str) -> str:
    """SumUp ``customer_id`` for a CRM key: the first 32 hex digits of SHA-256(external_id).

    SumUp lets the client choose the id. A digest is stable (the same key always finds the
    same customer, so a repeated create is a 409, never a duplicate), URL-safe whatever the
    CRM key holds, and does not put the CRM key (often an e-mail address) into URLs and logs.
    128 bits make a collision between two keys practically impossible.
    """
    return _sha256_text(external_id)[:SUMUP_CUSTOMER_ID_LENGTH]


def _nest(paths: Mapping[str, pl.Expr]) -> dict[str, Any]:
    tree: dict[str, Any] = {}
    for path, expr in paths.items():
        *parents, leaf = path.split(".")
        node = tree
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = expr
    return tree


def payload_tree(target: Target, *, entity_id: str | None = None) -> Tree:
    """The request body of ``target`` as a tree of polars expressions over canonical columns.

    SumUp's tree reads ``customer_id`` from a column of that name (see :func:`map_rows`).
    """
    paths = {field.path: pl.col(field.column) for field in TARGET_FIELDS[target]}
    if target == "verifone":
        if not entity_id:
            raise ValueError("a Verifone payload needs entity_id (CUSTSYNC_VERIFONE_ENTITY_ID)")
        paths["entity_id"] = pl.lit(entity_id, pl.String)
    else:
        paths["customer_id"] = pl.col("customer_id")
    return _nest(paths)


def _leaves(tree: Tree, prefix: str = "") -> dict[str, pl.Expr]:
    out: dict[str, pl.Expr] = {}
    for key, node in tree.items():
        path = f"{prefix}{key}"
        if isinstance(node, Mapping):
            out.update(_leaves(node, f"{path}."))
        else:
            out[path] = node
    return out


def _content_members(target: Target, entity_id: str | None) -> dict[str, pl.Expr]:
    leaves = _leaves(payload_tree(target, entity_id=entity_id))
    return {CONTENT_CODES[path]: expr for path, expr in leaves.items()}


def content_hash_expr(target: Target, *, entity_id: str | None = None) -> pl.Expr:
    """The content hash of every row, over canonical columns (SumUp: and ``customer_id``).

    Equal to :func:`content_hash` of the row's payload; the payload itself is not built.
    """
    # Verifone's entity_id is a setting, never null, with the lowest code: the cheaper text.
    present = CONTENT_CODES["entity_id"] if target == "verifone" else None
    text = content_text_expr(_content_members(target, entity_id), present=present)
    return hex_digest(text, "sha256")


def content_key_expr(target: Target, *, entity_id: str | None = None) -> pl.Expr:
    """The content key of every row (``UInt64``): equal to :func:`content_key` of its payload,
    which is not built."""
    return canonical_content_key_expr(_content_members(target, entity_id))


def payload_expr(target: Target, *, entity_id: str | None = None) -> pl.Expr:
    """The canonical JSON payload of every row (see :func:`content_hash_expr`'s columns)."""
    return json_object(payload_tree(target, entity_id=entity_id))


def mapped_frame(
    frame: pl.LazyFrame,
    target: Target,
    *,
    entity_id: str | None = None,
    carry: Sequence[str | pl.Expr] = (),
    payload: bool = True,
    hashed: bool = True,
    keyed: bool = True,
) -> pl.LazyFrame:
    """Lazy form of :func:`map_rows`: it streams, so millions of rows need little memory.

    ``carry`` names further columns (or expressions over the canonical columns and SumUp's
    ``customer_id``) to keep alongside the mapped ones. ``payload=False`` leaves the
    ``payload`` column out: a diff needs only the hashes, and the JSON of the few changed
    rows is cheaper built for them alone. ``hashed=False`` leaves ``content_hash`` out and
    ``keyed=False`` ``content_key`` (for a caller that has them already or needs neither).
    """
    if target == "sumup":
        customer_id = hex_digest(pl.col("external_id"), "sha256").str.head(SUMUP_CUSTOMER_ID_LENGTH)
        frame = frame.with_columns(customer_id.alias("customer_id"))
    remote_id = pl.col("customer_id") if target == "sumup" else pl.lit(None, pl.String)
    body = [payload_expr(target, entity_id=entity_id).alias("payload")] if payload else []
    if hashed:
        body.append(content_hash_expr(target, entity_id=entity_id).alias("content_hash"))
    if keyed:
        body.append(content_key_expr(target, entity_id=entity_id).alias("content_key"))
    return frame.select(
        pl.col("external_id"), pl.col("status"), remote_id.alias("remote_id"), *body, *carry
    )


def map_rows(valid: pl.DataFrame, target: Target, *, entity_id: str | None = None) -> pl.DataFrame:
    """Map validated canonical rows to ``target``'s request bodies.

    Returns ``external_id``, ``status``, ``remote_id`` (SumUp: the derived ``customer_id``;
    Verifone: null, the server assigns it), ``payload`` (canonical JSON text),
    ``content_hash`` (:func:`content_hash` of the payload) and ``content_key``
    (:func:`content_key`). ``entity_id`` is required for Verifone.
    """
    return mapped_frame(valid.lazy(), target, entity_id=entity_id).collect()


def _allowed(target: Target) -> dict[str, Any]:
    paths = [field.path for field in TARGET_FIELDS[target]]
    paths.append("entity_id" if target == "verifone" else "customer_id")
    return _nest(dict.fromkeys(paths, pl.lit(None)))


def _keep(record: Mapping[str, Any], allowed: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, shape in allowed.items():
        value = record.get(key)
        if isinstance(shape, Mapping):
            if isinstance(value, Mapping):
                out[key] = _keep(value, shape)
        elif isinstance(value, str | int | float) and value != "":
            out[key] = value
    return out


def payload_from_remote(target: Target, record: Mapping[str, Any]) -> dict[str, Any]:
    """A provider's GET body → the shape :func:`map_rows` gives that customer's payload.

    Keeps only fields of the request body (drops ``id``, ``created_at``, ``updated_at`` and
    anything else the provider adds), and drops nulls, empty strings and empty objects, which
    the canonical payload never holds.
    """
    return prune(_keep(record, _allowed(target)))


def _members(payload: Mapping[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    for key, value in payload.items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.extend(_members(value, f"{path}."))
        elif value is not None:
            code = CONTENT_CODES.get(path)
            if code is None:
                raise ValueError(f"{path!r} is not a field custsync sends")
            out.append((code, value))
    return out


def content_hash(payload: Mapping[str, Any]) -> str:
    """The content hash :func:`map_rows` gives a row whose payload is ``payload``.

    SHA-256 hex of the payload's content text (:func:`transforms.canonical.content_text` of
    its non-null leaves under :data:`CONTENT_CODES`); raises ``ValueError`` for a field
    custsync never sends.
    """
    return _sha256_text(content_text(_members(payload)))


def content_key(payload: Mapping[str, Any]) -> int:
    """The content key :func:`map_rows` gives a row whose payload is ``payload``.

    :func:`transforms.canonical.content_key` of the payload's non-null leaves under
    :data:`CONTENT_CODES`: a 64-bit number a diff compares (the SHA-256 content hash is what
    the audit trail shows); raises ``ValueError`` for a field custsync never sends.
    """
    return canonical_content_key(_members(payload))
