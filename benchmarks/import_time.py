"""What a command-line run imports: ``python -X importtime`` of ``+experiment=mlp check=true``, summarised.

Run from the repository root::

    OMP_NUM_THREADS=1 python benchmarks/import_time.py [extra overrides...]

Prints the number of modules imported, the top-level imports by cumulative time (an entry at the top
level was imported from inside a function at run time, or by the entry point), and whether the
watched heavy modules were imported at all. The times move with the machine's load; the module
counts and the watched list do not.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile

WATCHED = ("torch._dynamo", "matplotlib", "typedrunner.app.report", "sympy")


def main() -> None:
    env = dict(os.environ, OMP_NUM_THREADS="1")
    with tempfile.TemporaryDirectory() as run_dir:
        args = ["+experiment=mlp", "check=true", f"hydra.run.dir={run_dir}", *sys.argv[1:]]
        result = subprocess.run(
            [sys.executable, "-X", "importtime", "-m", "typedrunner", *args],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
    rows: list[tuple[int, int, str]] = []  # (cumulative us, depth, name)
    for line in result.stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        _, cumulative_us, module = line.split(":", 1)[1].split("|")
        rows.append((int(cumulative_us), (len(module) - len(module.lstrip())) // 2, module.strip()))
    names = {name for _, _, name in rows}
    print(f"{len(rows)} modules imported")
    print("top-level imports by cumulative time:")
    for cumulative, _, top in sorted((r for r in rows if r[1] == 0), reverse=True)[:10]:
        print(f"  {cumulative / 1000:9.1f} ms  {top}")
    for name in WATCHED:
        print(f"{name}: {'imported' if name in names else 'not imported'}")


if __name__ == "__main__":
    main()
