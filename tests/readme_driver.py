"""Runs the plan of tests/test_readme.py in the current folder: python blocks in one
namespace, command lines as child processes, in order; stops at the first failure,
naming its line of README.md (exit 1)."""

import json
import subprocess
import sys
import traceback


def main(plan_path):
    with open(plan_path, encoding="utf-8") as fh:
        plan = json.load(fh)
    namespace = {"__name__": "__main__"}
    for kind, what, line in plan:
        where = f"README.md, line {line}"
        if kind == "python":
            try:
                exec(compile(what, where, "exec"), namespace)
            except BaseException:
                print(f"{where}: the python block failed\n{what}", flush=True)
                traceback.print_exc()
                return 1
        else:
            proc = subprocess.run(what, capture_output=True, text=True)
            if proc.returncode != 0:
                print(f"{where}: {' '.join(what[1:])} exited with {proc.returncode}\n"
                      f"{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}", flush=True)
                return 1
        print(f"{where}: ok", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
