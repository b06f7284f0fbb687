"""How the scripts start Python: `python -m trainer.launch MODULE ARGS...`
runs MODULE's main(ARGS) under the error contract (trainer/errors.py), its
own imports included: a package missing from this Python (a car's light
install running a training script, a clone before `make install`) is one
line naming it, not an ImportError's traceback.

    python -m trainer.launch trainer.task -a wip.tgz      # local_train.sh
    python -m trainer.launch trainer.cli download -m pilot-wip
"""
import importlib
import sys

from trainer.errors import missing_package, prog, run_main


def main():
    module, sys.argv = sys.argv[1], [sys.argv[1], *sys.argv[2:]]
    try:
        job = importlib.import_module(module)
    except ModuleNotFoundError as e:
        if not e.name or e.name.split(".")[0] == "trainer":
            raise                               # ours: a bug, with its traceback
        print(f"{prog()}: {missing_package(e.name)}", file=sys.stderr)
        return 1
    return run_main(job.main)


if __name__ == "__main__":
    sys.exit(main())
