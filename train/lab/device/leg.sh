#!/bin/bash
# One device call: install the carried wheels (if any), then a campaign leg on the GPU that exports its
# shards into $OUT/weights (train/lab/device/leg.py; README.md beside this file).
#   run(command="bash train/lab/device/leg.sh --out $OUT", carry=[".devdata", ".whl"], timeout_s=560)
set -eu
if compgen -G ".whl/*.whl" > /dev/null; then
    python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/lic-site .whl/*.whl
    export PYTHONPATH=/tmp/lic-site${PYTHONPATH:+:$PYTHONPATH}
fi
export PYTHONUNBUFFERED=1
python3 -c "import torch, constriction, safetensors; print('torch', torch.__version__, torch.cuda.get_device_name())"
exec python3 -m train.lab.device.leg "$@"
