"""Snapshots of a running env (and the process RNGs) for exact resume.

On- and off-policy trainers keep their envs running across iterations (episodes are long, e.g.
1000 MaMuJoCo steps, longer than an on-policy rollout), so an exact resume must restore the envs
mid-episode. Two routes:

1. The env implements ``snapshot_state() -> dict`` / ``restore_state(dict)`` (MaMuJoCo does:
   MuJoCo integration state, step counters and RNGs of every simulator).
2. Otherwise a generic walk over the env object's attributes (and nested objects, lists, dicts)
   records every ``torch.Tensor``, ``numpy.ndarray``, ``torch.Generator`` and plain scalar by
   path; restore writes them back into a freshly built env of the same kind (tensors in place,
   so aliases stay aliases). This covers envs whose whole state lives in tensors (VMAS worlds,
   the unit-test envs). An env that holds state elsewhere must implement route 1.

The global torch / numpy / python RNG states are saved too (VMAS resets draw from them).
"""
from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch

_SCALARS = (bool, int, float)
_MAX_DEPTH = 8


def _walk(obj: Any, path: tuple, out: dict, seen: set, depth: int) -> None:
    if depth > _MAX_DEPTH or id(obj) in seen:
        return
    seen.add(id(obj))
    if isinstance(obj, dict):
        items = [(k, v) for k, v in obj.items() if isinstance(k, str)]  # int keys: often id() caches
    elif isinstance(obj, (list, tuple)):
        items = list(enumerate(obj))
    elif hasattr(obj, "__dict__") and type(obj).__module__.split(".")[0] not in ("builtins", "torch", "numpy"):
        items = list(vars(obj).items())
    else:
        return
    for k, v in items:
        p = path + (k,)
        if isinstance(v, torch.Tensor):
            out.setdefault(p, v.detach().cpu().clone())
        elif isinstance(v, np.ndarray):
            out.setdefault(p, v.copy())
        elif isinstance(v, torch.Generator):
            out.setdefault(p, ("generator", v.get_state()))
        elif isinstance(v, _SCALARS) and not isinstance(obj, (list, tuple)):
            out.setdefault(p, ("scalar", v))
        elif not callable(v) or hasattr(v, "__dict__") and not isinstance(v, type):
            _walk(v, p, out, seen, depth + 1)


def _get(obj: Any, key: Any) -> Any:
    return obj[key] if isinstance(obj, (dict, list, tuple)) else getattr(obj, key)


def _set(obj: Any, key: Any, value: Any) -> None:
    if isinstance(obj, (dict, list)):
        obj[key] = value
    else:
        setattr(obj, key, value)


def global_rng_state() -> dict:
    """torch (CPU and, once initialised, CUDA), numpy and python global RNG states."""
    st = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        st["cuda"] = torch.cuda.get_rng_state_all()
    return st


def set_global_rng_state(st: dict) -> None:
    torch.set_rng_state(st["torch"])
    np.random.set_state(st["numpy"])
    random.setstate(st["python"])
    if "cuda" in st and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(st["cuda"])


def env_state(env: Any) -> dict:
    """Everything needed to continue ``env`` exactly (see the module docstring)."""
    if hasattr(env, "snapshot_state"):
        return {"kind": "protocol", "state": env.snapshot_state(), "rng": global_rng_state()}
    leaves: dict = {}
    _walk(env, (), leaves, set(), 0)
    return {"kind": "walk", "type": type(env).__qualname__, "leaves": leaves, "rng": global_rng_state()}


def load_env_state(env: Any, st: dict) -> None:
    """Restore a snapshot from :func:`env_state` into a freshly built env of the same kind."""
    if st["kind"] == "protocol":
        if not hasattr(env, "restore_state"):
            raise ValueError(f"the checkpoint's env snapshot needs {type(env).__name__}.restore_state; "
                             "resume with the same env the run was trained on.")
        env.restore_state(st["state"])
    else:
        if st["type"] not in {c.__qualname__ for c in type(env).__mro__}:  # a subclass shares the layout
            raise ValueError(f"the checkpoint's env snapshot is of a {st['type']}, not a {type(env).__qualname__}; "
                             "resume with the same --env the run was trained on.")
        for path, v in st["leaves"].items():
            parent = env
            for k in path[:-1]:
                parent = _get(parent, k)
            try:
                cur = _get(parent, path[-1])
            except (AttributeError, KeyError, IndexError):  # not created yet (e.g. before the first reset)
                cur = None
            if isinstance(v, torch.Tensor) and isinstance(cur, torch.Tensor) and cur.shape == v.shape and cur.dtype == v.dtype:
                cur.copy_(v)
            elif isinstance(v, torch.Tensor):
                _set(parent, path[-1], v.to(cur.device if isinstance(cur, torch.Tensor) else "cpu"))
            elif isinstance(v, np.ndarray):
                if isinstance(cur, np.ndarray) and cur.shape == v.shape and cur.dtype == v.dtype and cur.flags.writeable:
                    cur[...] = v
                else:
                    _set(parent, path[-1], v.copy())
            elif v[0] == "generator":
                if cur is None:
                    raise ValueError(f"env snapshot: {type(env).__name__} has no generator at {'.'.join(map(str, path))}; "
                                     "resume with the same --env the run was trained on.")
                cur.set_state(v[1])
            elif cur != v[1]:
                _set(parent, path[-1], v[1])
    set_global_rng_state(st["rng"])
