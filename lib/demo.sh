#!/usr/bin/env bash
# Summary: the demo of the README, run by `make demo`
# Usage: lib/demo.sh CAR_FOLDER
#
# Makes a car folder with DonkeyCar's own `donkey createcar`, records a
# synthetic tub into its data/, links the scripts in, then runs
# ./make_tub_archive.sh and ./local_train.sh there, as a user would.
set -euo pipefail
# shellcheck source=lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
rt_find_python

car=${1:?usage: lib/demo.sh CAR_FOLDER}
[ ! -e "$car/models/pilot-wip.h5" ] ||
  die "$car already holds a trained demo model: remove $car to run the demo again"
rm -rf "$car"
"$PY" -m donkeycar.management.base createcar --path "$car" >/dev/null
cat >>"$car/myconfig.py" <<'CFG'

# robocar-trainer demo: a short run on a small synthetic tub
MAX_EPOCHS = 12
BATCH_SIZE = 32
CFG
"$PY" "$ROOT/lib/synthtub.py" --path "$car/data" --records 800
for s in "$ROOT"/*.sh; do ln -sf "$s" "$car/"; done
cd "$car"
./make_tub_archive.sh
./local_train.sh
echo
echo "Demo car: $(pwd)"
ls -l models/pilot-wip.*
"$PY" - <<'PY'
import json
card = json.load(open("models/pilot-wip.json"))
ev = card["evaluation"]["h5"]
print(f"val_loss {card['best_val_loss']:.4f} after {card['epochs']} epochs; "
      f"steering MAE {ev['steering_mae']:.3f} on {ev['frames']} frames; "
      f"parity tflite {card['parity']['tflite']:.1e}, onnx {card['parity']['onnx']:.1e}")
PY
