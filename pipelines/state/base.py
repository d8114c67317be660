"""The connection every part of the state store works through, and its transaction.

:class:`~pipelines.state.store.StateStore` is one object composed of parts of one concept
each (migrations, runs, snapshot, plan, journal, ownership, audit reads), all subclasses of
:class:`StateBase`: they share one connection and one transaction, which a batch write needs
(calls, outcomes, journal and snapshot commit together).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, Concatenate, ParamSpec, TypeVar

import duckdb
import polars as pl

Params = Sequence[Any] | Mapping[str, Any]
"""Query parameters: a sequence for ``?`` placeholders, a mapping for ``$name`` ones."""

P = ParamSpec("P")
R = TypeVar("R")
S = TypeVar("S", bound="StateBase")


def adapts_memory(method: Callable[Concatenate[S, P], R]) -> Callable[Concatenate[S, P], R]:
    """Run a store method again when DuckDB ran out of the memory it was given, if the store
    could give it more (:meth:`StateBase._more_memory`). A run caps DuckDB's memory, but what
    DuckDB cannot spill (index nodes a transaction changed, a join's build side) may need more
    than the cap on some data: the run goes on with a higher cap instead of stopping. Only
    methods whose every write is one transaction (rolled back by the failure) are decorated."""

    @functools.wraps(method)
    def again(self: S, /, *args: P.args, **kwargs: P.kwargs) -> R:
        while True:
            try:
                return method(self, *args, **kwargs)
            except duckdb.OutOfMemoryException as exc:
                if self._in_transaction or not self._more_memory(exc):
                    raise

    return again


class StateBase:
    """A DuckDB connection to a state file, with the helpers the store's parts share."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self._con: duckdb.DuckDBPyConnection | None = con
        self._registered: list[str] = []
        self._in_transaction = False

    @property
    def con(self) -> duckdb.DuckDBPyConnection:
        """The connection; opened again (:meth:`_reconnect`) after a release."""
        if self._con is None:
            self._con = self._reconnect()
        return self._con

    def _reconnect(self) -> duckdb.DuckDBPyConnection:
        raise RuntimeError("the state store is closed")

    def _more_memory(self, exc: duckdb.OutOfMemoryException) -> bool:
        """Give DuckDB more memory after ``exc``; False when there is no more to give."""
        return False

    @contextmanager
    def transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """Run a block in one transaction: all of it commits, or none of it."""
        self.con.begin()
        self._in_transaction = True
        try:
            yield self.con
        except BaseException:
            self.con.rollback()
            raise
        else:
            self.con.commit()
        finally:
            self._in_transaction = False
            # Frames registered for the block go only now: DuckDB refuses to unregister
            # inside an aborted transaction, which would hide the error that aborted it.
            for name in self._registered:
                self.con.unregister(name)
            self._registered.clear()

    def _run(self, sql: str, params: Params | None = None) -> list[Any]:
        """Execute and fetch everything: DuckDB refuses new work on a connection while a
        result is unfinished, and a DML statement's result (its row count) counts as one."""
        return self.con.execute(sql, params).fetchall()

    def _frame(self, query: str, params: Params | None = None) -> pl.DataFrame:
        """Run a query and return its result as a polars frame."""
        if isinstance(params, Mapping):
            params = dict(params)
        elif params is not None:
            params = list(params)
        relation = self.con.sql(query, params=params or None)
        if relation is None:  # a statement, not a query
            raise TypeError(f"not a query: {query[:40]!r}")
        return relation.pl()

    def _register(self, frame: pl.DataFrame) -> str:
        """Register ``frame`` for the current :meth:`transaction`; return its name."""
        name = f"__batch_{len(self._registered)}"
        self.con.register(name, frame.to_arrow())
        self._registered.append(name)
        return name

    def _insert(self, frame: pl.DataFrame, statement: str, params: Mapping[str, Any]) -> None:
        """Run ``statement`` (inside :meth:`transaction`), ``{batch}`` naming the frame."""
        self._run(statement.format(batch=self._register(frame)), dict(params))
