"""CLI options built from :class:`~pipelines.spec.RunSpec`'s fields, one per flow parameter.

The names, help texts and limits are the spec's; only how click spells them is here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from connectors.providers.registry import provider_names
from pipelines.settings import Settings
from pipelines.spec import Parameter, RunSpec, parameters
from transforms.schema import MODES


class ProviderChoice(click.Choice[str]):
    """A registered provider's name, read from the registry when the command line is parsed
    (so a provider registered after import is a valid choice too)."""

    name = "target"

    def __init__(self) -> None:
        super().__init__(())

    @property
    def choices(self) -> tuple[str, ...]:
        return provider_names()

    @choices.setter
    def choices(self, _value: Any) -> None:
        pass


def _type(param: Parameter) -> click.ParamType | None:
    meta = param.param
    if meta.choices == "targets":
        return ProviderChoice()
    if meta.choices == "modes":
        return click.Choice(MODES)
    if meta.path == "existing":
        return click.Path(dir_okay=False, exists=True)
    if meta.path == "file":
        return click.Path(dir_okay=False)
    if param.type.startswith("int"):
        return click.IntRange(
            None if meta.minimum is None else int(meta.minimum),
            None if meta.maximum is None else int(meta.maximum),
        )
    if param.type.startswith("float"):
        if meta.minimum is None and meta.maximum is None:
            return click.FLOAT
        return click.FloatRange(meta.minimum, meta.maximum)
    return None


def _help(param: Parameter) -> str:
    meta = param.param
    if meta.setting is None:
        return meta.help
    default = getattr(Settings(), meta.setting)
    env = f"CUSTSYNC_{meta.setting.upper()}"
    shown = "adaptive" if default is None else default
    return f"{meta.help}  [default: ${env} or {shown}]"


def _option(param: Parameter) -> Callable[[Any], Any]:
    meta = param.param
    help = _help(param)
    flag = meta.flag or f"--{param.name.replace('_', '-')}"
    declared = [flag, param.name]
    if param.name == "target":
        declared.insert(1, "-t")
    if param.type == "bool":
        return click.option(*declared, is_flag=True, help=help)
    if param.type.startswith("tuple"):
        return click.option(*declared, multiple=True, type=_type(param), help=help)
    return click.option(
        *declared,
        type=_type(param),
        required=param.required,
        default=param.default,
        show_default=param.default is not None,
        help=help,
    )


def spec_options(flow: str) -> Callable[[Any], Any]:
    """Decorate a command with ``flow``'s parameters: the ``EXTRACT`` argument and one option
    per other parameter, then ``--json`` and ``--verbose``."""

    def decorate(func: Any) -> Any:
        extra = [
            click.option(
                "--json", "as_json", is_flag=True, help="Print one JSON summary on stdout."
            ),
            click.option("--verbose", "-v", is_flag=True, help="Show Prefect's run logs."),
        ]
        for option in reversed(extra):
            func = option(func)
        for param in reversed(parameters(flow)):
            if param.param.flag == "":
                func = click.argument(param.name, nargs=-1, required=True)(func)
            else:
                func = _option(param)(func)
        return func

    return decorate


def flow_parameters(flow: str, options: dict[str, Any]) -> dict[str, Any]:
    """The flow's parameters from a command's parsed options (tuples become lists)."""
    out: dict[str, Any] = {}
    for param in parameters(flow):
        value = options[param.name]
        out[param.name] = list(value) if isinstance(value, tuple) else value
    return out


__all__ = ["ProviderChoice", "RunSpec", "flow_parameters", "spec_options"]
