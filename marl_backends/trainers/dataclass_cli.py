"""Map a frozen config dataclass onto argparse flags 1:1 (``field_name`` -> ``--field-name``).

Help text comes from the class docstring's ``Attributes:`` section, so the docs live in one
place. Booleans get ``--x / --no-x``; tuples of ints are comma-separated. Every flag defaults to
None, so :func:`given_fields` can tell which the user set (resume uses that).
"""
from __future__ import annotations

import argparse
import re
import typing
from dataclasses import MISSING, fields


def attribute_docs(cls: type) -> dict[str, str]:
    """Parse ``name: text`` lines (with continuations) of the docstring's Attributes section."""
    doc = cls.__doc__ or ""
    out: dict[str, str] = {}
    cur = None
    for line in doc.split("Attributes:", 1)[-1].splitlines():
        m = re.match(r"^\s{8}(\w+): (.*)$", line)
        if m:
            cur = m.group(1)
            out[cur] = m.group(2).strip()
        elif cur and line.strip():
            out[cur] += " " + line.strip()
    return out


def _int_tuple(s: str) -> tuple[int, ...]:
    try:
        return tuple(int(x) for x in s.split(",") if x.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers like 128,128, got {s!r}") from None


def add_dataclass_arguments(parser: argparse.ArgumentParser, cls: type, skip: tuple[str, ...] = ()) -> None:
    hints = typing.get_type_hints(cls)
    docs = attribute_docs(cls)
    for f in fields(cls):
        if f.name in skip:
            continue
        flag = "--" + f.name.replace("_", "-")
        default = f.default if f.default is not MISSING else None
        shown = ",".join(map(str, default)) if isinstance(default, tuple) else default
        help_ = f"{docs.get(f.name, '')} (default: {shown!r})".replace("%", "%%")
        t = hints[f.name]
        if t is bool:
            parser.add_argument(flag, dest=f.name, action=argparse.BooleanOptionalAction, default=None, help=help_)
        elif typing.get_origin(t) is tuple:
            parser.add_argument(flag, dest=f.name, type=_int_tuple, default=None, metavar="N,N", help=help_)
        else:
            parser.add_argument(flag, dest=f.name, type=t, default=None, help=help_)


def given_fields(args: argparse.Namespace, cls: type) -> dict:
    """The dataclass fields the user set on the command line."""
    return {f.name: getattr(args, f.name) for f in fields(cls) if getattr(args, f.name, None) is not None}
