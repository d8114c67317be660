"""Canonical rows → the providers' request bodies, and their content hashes.

Verifone receives a ``CustomerRequest`` (billing, shipping, tax, ``entity_id`` from
settings); SumUp a ``Customer`` (``customer_id`` derived from ``external_id``, personal
details, the billing address as ``address``). Which column goes where is the field table of
:mod:`transforms.fields`. Payloads are canonical JSON (:mod:`transforms.canonical`) and the
content hash is the MD5 of that text, so equal payloads hash equal across runs and versions.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import polars as pl

from transforms.canonical import Tree, canonical_json, hex_digest, json_object, md5_text, prune
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
    }
)
"""Columns of :func:`map_rows`' result."""

SUMUP_CUSTOMER_ID_LENGTH = 32


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


def mapped_frame(
    frame: pl.LazyFrame,
    target: Target,
    *,
    entity_id: str | None = None,
    carry: Sequence[str] = (),
) -> pl.LazyFrame:
    """Lazy form of :func:`map_rows`: it streams, so millions of rows need little memory.

    ``carry`` names further columns of ``frame`` to keep alongside the mapped ones.
    """
    if target == "sumup":
        customer_id = hex_digest(pl.col("external_id"), "sha256").str.head(SUMUP_CUSTOMER_ID_LENGTH)
        frame = frame.with_columns(customer_id.alias("customer_id"))
    remote_id = pl.col("customer_id") if target == "sumup" else pl.lit(None, pl.String)
    return frame.select(
        pl.col("external_id"),
        pl.col("status"),
        remote_id.alias("remote_id"),
        json_object(payload_tree(target, entity_id=entity_id)).alias("payload"),
        *carry,
    ).with_columns(hex_digest(pl.col("payload"), "md5").alias("content_hash"))


def map_rows(valid: pl.DataFrame, target: Target, *, entity_id: str | None = None) -> pl.DataFrame:
    """Map validated canonical rows to ``target``'s request bodies.

    Returns ``external_id``, ``status``, ``remote_id`` (SumUp: the derived ``customer_id``;
    Verifone: null, the server assigns it), ``payload`` (canonical JSON text) and
    ``content_hash`` (MD5 hex of ``payload``). ``entity_id`` is required for Verifone.
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


def content_hash(payload: Mapping[str, Any]) -> str:
    """The content hash :func:`map_rows` gives a row whose payload is ``payload``."""
    return md5_text(canonical_json(payload))
