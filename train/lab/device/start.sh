#!/bin/bash
# Device call 1 (run from the repo root on the GPU machine, carry: .whl .devdata):
# install the wheels, check the imports, stage source and data in /tmp, start training detached.
#   MINUTES=21 CONFIG=default bash train/lab/device/start.sh [extra python -m train flags]
set -eu
MINUTES=${MINUTES:-21}
CONFIG=${CONFIG:-default}
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
export PYTHONPATH=/tmp/site:/tmp/src PYTHONUNBUFFERED=1
mkdir -p /tmp/src /tmp/data /tmp/run
cp -r codec bitstream train /tmp/src/
# Data either travels with this call (carry .devdata) or was staged by earlier calls (stage.sh).
if compgen -G ".devdata/shard-*" > /dev/null; then cp -r .devdata/shard-* /tmp/data/; fi
if [ -z "$(ls -A /tmp/data)" ]; then echo "no training data: carry .devdata or run stage.sh first" >&2; exit 1; fi
cd /tmp/src
python3 - <<'PY'
import numpy, torch, constriction
import codec.model, bitstream  # codec has its own GDN now; compressai is only checked, not needed
try:
    import compressai
    extra = f"compressai {compressai.__version__}"
except Exception as e:  # numpy 2.x / missing deps: harmless for training
    extra = f"compressai not importable ({type(e).__name__})"
print("torch", torch.__version__, "numpy", numpy.__version__, extra, "constriction ok;",
      torch.cuda.get_device_name(), flush=True)
PY
setsid nohup python3 -m train --data /tmp/data --run /tmp/run/main --minutes "$MINUTES" --config "$CONFIG" \
    --batch-size 16 --patch 256 --bank-size 256 --bank-width 384 --crops-per-image 1 \
    --lr 2e-4 --min-lr 1e-5 --warmup-steps 1000 --decay-frac 0.2 --log-every 100 --eval-every 2000 \
    --checkpoint-minutes 4 --plan-seconds 60 --reserve-seconds 20 "$@" \
    > /tmp/run/log.txt 2>&1 < /dev/null &
sleep 100
cat /tmp/run/log.txt
nvidia-smi --query-gpu=name,utilization.gpu,memory.used --format=csv
