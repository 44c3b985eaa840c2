#!/bin/bash
# Device calls 2..n: wait, then show how the run is doing.   bash train/lab/device/watch.sh [seconds]
sleep "${1:-480}"
grep -E "planned|compile|Error|error" /tmp/run/log.txt | tail -5
tail -n 8 /tmp/run/log.txt
nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv,noheader
