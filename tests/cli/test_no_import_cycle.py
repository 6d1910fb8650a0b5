"""One CLI module owns dispatch, with no import circle: no module reachable from a CLI or
checkpoint module imports it back (lazy, function-level imports included)."""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def import_graph() -> dict[str, set[str]]:
    files = {}
    for p in [*ROOT.glob("hetero/**/*.py"), *ROOT.glob("marl_backends/**/*.py")]:
        name = ".".join(p.relative_to(ROOT).with_suffix("").parts)
        files[name.removesuffix(".__init__")] = p
    graph = {}
    for mod, p in files.items():
        deps = set()
        for node in ast.walk(ast.parse(p.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                deps |= {node.module} | {f"{node.module}.{a.name}" for a in node.names}
            elif isinstance(node, ast.Import):
                deps |= {a.name for a in node.names}
        graph[mod] = (deps & set(files)) - {mod}
    return graph


def test_cli_and_checkpoint_modules_are_not_in_an_import_circle():
    graph = import_graph()
    for mod in [m for m in graph if m.endswith((".cli", ".checkpoint", ".build", ".recovery"))]:
        seen, todo = set(), [mod]
        while todo:
            for dep in graph[todo.pop()]:
                if dep not in seen:
                    seen.add(dep)
                    todo.append(dep)
        assert mod not in seen, f"{mod} imports itself back through {sorted(seen & set(graph))}"
