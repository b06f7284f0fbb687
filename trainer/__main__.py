"""How the scripts start Python (lib/common.sh):

    python -m trainer --prog local_train.sh --usage "Usage: ..." trainer.task -a wip.tgz
    python -m trainer --prog download_models.sh trainer.client.cli download -m pilot-wip

runs the module's main() under the error contract, its imports included
(trainer/core/errors.py, launch()).
"""
import sys

from trainer.core.errors import launch

if __name__ == "__main__":
    sys.exit(launch(sys.argv[1:]))
