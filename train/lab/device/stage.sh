#!/bin/bash
# Stage one data shard into the device's /tmp/data (carry: .devdata/shard-0N), for when the shipped
# weights make the checkout too large to carry the whole training set in one call (64 MiB in all).
#   bash train/lab/device/stage.sh .devdata/shard-01
set -eu
mkdir -p /tmp/data
cp -r "$1" /tmp/data/
du -sh /tmp/data
