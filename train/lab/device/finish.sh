#!/bin/bash
# Last device call: wait for the run to end (at most ${WAIT:-540} s), export the weights into
# $OUT/weights (shards < 16 MiB) and bring back the logs.   bash train/lab/device/finish.sh
export PYTHONPATH=/tmp/site:/tmp/src PYTHONUNBUFFERED=1
for _ in $(seq 1 "${WAIT:-540}"); do
    grep -q "^held-out" /tmp/run/log.txt && break
    pgrep -f "m train --data /tmp/data" > /dev/null || break
    sleep 1
done
cd /tmp/src
python3 -m train.export /tmp/run/main --out "$OUT/weights"
cp /tmp/run/main/log.csv /tmp/run/log.txt "$OUT/"
tail -n 5 /tmp/run/log.txt
ls -la "$OUT" "$OUT/weights"
