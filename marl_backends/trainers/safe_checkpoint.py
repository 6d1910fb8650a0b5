"""Checkpoints that load without running code: plain data in, ``torch.load(weights_only=True)`` out.

Format 2 (hetero 0.3.0) holds tensors and plain Python data only; numpy arrays and scalars (RNG
states, env snapshots, HetDPS matrices) are stored by :func:`encode` as tensors and turned back by
:func:`decode`. :func:`load` reads every checkpoint weights-only: a pickle that asks for anything
else is refused before any of it runs (:class:`Refused`). Format 1 files (hetero 0.2 and earlier,
numpy RNG states pickled as numpy objects) are refused with the fix, a one-time conversion
that needs a full pickle load and so an explicit trust flag: ``hetero convert-checkpoint RUN
--trust-pickle`` (:func:`convert`).
"""
from __future__ import annotations

import argparse
import copy
import pickle
import re
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hetero.errors import UsageError

FORMAT = 2
_ND = "__ndarray__"
# what a format-1 checkpoint pickles besides tensors: numpy arrays, dtypes and scalars
_OLD_GLOBALS = re.compile(r"numpy\.(dtype|ndarray|(_core|core)\.multiarray\.(_reconstruct|scalar)|dtypes\.\w+DType)")
CONVERT = "hetero convert-checkpoint {run} --trust-pickle"


class Unreadable(UsageError):
    """The file is damaged (a torn write, a full disk): a run folder falls back to an older one."""


class Refused(UsageError):
    """The file is not plain data (a foreign or hostile pickle); nothing in it ran."""


class OldFormat(Refused):
    """A checkpoint of an earlier format; ``needs_pickle``: only a full pickle load reads it."""

    def __init__(self, path: Path, version: object, needs_pickle: bool) -> None:
        self.needs_pickle = needs_pickle
        super().__init__(f"{path}: checkpoint format {version} (hetero 0.2 or earlier); this version reads format "
                         f"{FORMAT} only, loaded weights-only so that a checkpoint never runs code. If the file is "
                         f"yours or you trust its source, convert the run once: {CONVERT.format(run=_run_of(path))}")


def encode(obj: Any) -> Any:
    """``obj`` with every numpy array / scalar replaced by plain data (tensors, numbers); containers
    are copied only where something inside changed (module state dicts keep their metadata)."""
    if isinstance(obj, np.ndarray):
        if obj.dtype.hasobject or obj.dtype.fields:
            raise TypeError(f"cannot store a numpy array of dtype {obj.dtype} in a checkpoint; use a tensor.")
        raw = np.ascontiguousarray(obj)
        return {_ND: torch.from_numpy(raw.reshape(-1).view(np.uint8).copy()), "dtype": raw.dtype.str,
                "shape": list(raw.shape)}
    if isinstance(obj, np.generic):
        return obj.item()
    return _map(obj, encode)


def decode(obj: Any) -> Any:
    """The inverse of :func:`encode`."""
    if isinstance(obj, dict) and _ND in obj and set(obj) == {_ND, "dtype", "shape"}:
        dtype = np.dtype(obj["dtype"])
        if dtype.hasobject:
            raise Unreadable(f"unreadable: an array of dtype {dtype}")
        return np.frombuffer(obj[_ND].numpy().tobytes(), dtype).reshape(obj["shape"]).copy()
    return _map(obj, decode)


def _map(obj: Any, fn) -> Any:  # noqa: ANN001
    """``fn`` applied to the values of a dict / list / tuple; the same object when nothing changed."""
    if isinstance(obj, dict):
        new = {k: fn(v) for k, v in obj.items()}
        if all(new[k] is v for k, v in obj.items()):
            return obj
        if type(obj) is dict:
            return new
        out = copy.copy(obj)
        out.update(new)
        return out
    if type(obj) in (list, tuple):
        new = [fn(v) for v in obj]
        return obj if all(a is b for a, b in zip(new, obj)) else type(obj)(new)
    return obj


def _run_of(path: Path) -> Path:
    return path.parent.parent if path.parent.name == "checkpoints" else path.parent


def _first_line(e: BaseException) -> str:
    return (str(e).splitlines() or [""])[0][:120]


def load(path: str | Path) -> dict:
    """A format-2 checkpoint, read weights-only and decoded. :class:`Unreadable` for a damaged
    file, :class:`Refused` for anything else that is not one (nothing in the file runs)."""
    path = Path(path)
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        raise _refusal(path, e) from e
    except Exception as e:  # noqa: BLE001 - truncated zip, EOF, ...: all mean "damaged"
        raise Unreadable(f"unreadable: {type(e).__name__}: {_first_line(e)}") from e
    if not isinstance(obj, dict):
        raise Unreadable(f"not a checkpoint of `hetero train` (holds a {type(obj).__name__})")
    version = obj.get("version", 1)
    if version != FORMAT:
        raise OldFormat(path, version, needs_pickle=False)
    return decode(obj)


def _unsafe_globals(path: Path) -> list[str] | None:
    """The globals the file's pickle would import (scanned, not run); None if it is no torch file."""
    try:
        return list(torch.serialization.get_unsafe_globals_in_checkpoint(path))
    except Exception:  # noqa: BLE001 - not a torch zip archive
        return None


def _refusal(path: Path, e: BaseException) -> UsageError:
    names = _unsafe_globals(path)
    if names is None:
        with open(path, "rb") as f:
            head = f.read(2)
        if head[:1] != b"\x80":
            return Unreadable(f"unreadable: {_first_line(e)}")
        return Refused(f"{path}: refused: a bare pickle, not a checkpoint written by `hetero train`; it was not "
                       "loaded (unpickling it could run code). Delete it or replace it with the run's own file.")
    if names and all(_OLD_GLOBALS.fullmatch(n) for n in names):
        return OldFormat(path, 1, needs_pickle=True)
    if not names:
        return Unreadable(f"unreadable: {_first_line(e)}")
    return Refused(f"{path}: refused: its pickle would call {', '.join(names[:4])}, which no checkpoint of "
                   "`hetero train` holds; checkpoints are loaded weights-only, so none of it ran. Do not use a file "
                   "whose source you cannot vouch for.")


def _files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    files = [path / "checkpoint.pt"] if (path / "checkpoint.pt").is_file() else []
    return files + sorted((path / "checkpoints").glob("iter_*.pt"))


def convert(path: str | Path, trust_pickle: bool = False, say=print) -> list[Path]:  # noqa: ANN001
    """Rewrite the checkpoints of a run folder (or one file) in format 2; returns the files changed.

    Files that only a full pickle load can read (format 1) need ``trust_pickle``: that load runs
    whatever the pickle holds, so pass it only for files you wrote or whose source you trust."""
    from marl_backends.trainers.run_io import atomic_torch_save

    path = Path(path)
    if not path.exists():
        raise UsageError(f"{path}: no such run folder or checkpoint file.")
    files = _files(path)
    if not files:
        raise UsageError(f"{path} holds no checkpoint.pt or checkpoints/iter_*.pt to convert.")
    done = []
    for f in files:
        try:
            load(f)
            say(f"{f}: already format {FORMAT}")
            continue
        except Unreadable as e:
            raise UsageError(f"{f}: {e}") from None
        except OldFormat as e:
            full = e.needs_pickle
        except Refused:
            full = True
        if full and not trust_pickle:
            raise UsageError(f"{f} needs a full pickle load, which runs whatever code the file holds; if you wrote "
                             f"it or trust its source: {CONVERT.format(run=path)}")
        obj = torch.load(f, map_location="cpu", weights_only=not full)
        if not isinstance(obj, dict):
            raise UsageError(f"{f}: not a checkpoint of `hetero train` (holds a {type(obj).__name__}).")
        atomic_torch_save(encode({**obj, "version": FORMAT}), f)
        load(f)  # plain data now
        done.append(f)
        say(f"{f}: converted to format {FORMAT}")
    return done


def add_convert_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run", metavar="RUN", help="run folder of `hetero train` (or one checkpoint file)")
    parser.add_argument("--trust-pickle", action="store_true",
                        help="allow the full pickle load that format-1 checkpoints need; it runs whatever code the "
                             "file holds, so use it only for files you wrote or trust")


def cmd_convert(args: argparse.Namespace) -> int:
    """``hetero convert-checkpoint RUN [--trust-pickle]``."""
    convert(args.run, args.trust_pickle, say=lambda text: print(text, file=sys.stderr))
    return 0
