"""A sweep file whose methods carry path separators, `..` or NUL: every run name is one path
component inside OUT/runs (separators and NUL become `-`), `--dry-run` writes nothing. Names that
are `.` or `..` themselves are refused (tests/sweep/test_sweep_checks.py)."""
from __future__ import annotations

import pytest

from hetero.cli import main
from marl_backends.sweep import load_spec
from marl_backends.sweep.engines import tasks_of

SPEC = """
[options]
algo = "mappo"
frames = 16
num_envs = 2
rollout_steps = 8
[grid]
env = ["pms_15a_3c"]
method = ["{m}"]
seed = [0]
[methods."{m}"]
sharing = "fps"
"""


@pytest.mark.parametrize("method", ["../../x", "a/b", "/etc", "a\\\\b", "a\\u0000b", ".."],
                         ids=["dotdot-path", "slash", "absolute", "backslash", "nul", "dotdot-with-env"])
def test_run_names_from_hostile_methods_stay_inside_out_runs(tmp_path, capsys, method):
    f = tmp_path / "s.toml"
    f.write_text(SPEC.format(m=method))
    out = tmp_path / "out"
    rc = main(["sweep", "run", str(f), "--dry-run", "--out", str(out)])
    stdout, err = capsys.readouterr()
    assert rc == 0 and "Traceback" not in err, err
    runs = (out / "runs").resolve()
    for task in tasks_of(load_spec(f, out=out)):
        assert task.run_dir.resolve().parent == runs and not any(c in task.name for c in "/\\\0"), task.name
        assert stdout.startswith(f"{task.name}: hetero train")
    assert not out.exists()  # a dry run writes nothing
