#!/usr/bin/env bash
# Train the model on the device machine (see models/README.md) and bring the run back through $OUT: the device
# tool returns at most 8 files of 16 MiB, so the run folder (Hugging Face checkpoint, log, report) travels as a
# tar split into 15 MiB pieces. Join here with: cat OUT/run.tar.part-* | tar -x -C DEST
#   tools/train_device.sh [train_model.py options...]
set -u
OUT=${OUT:?set OUT}
RUN=/tmp/kvlens-train
rm -rf "$RUN"
PYTHONUNBUFFERED=1 timeout "${TRAIN_TIMEOUT:-545}" python3 tools/train_model.py --out "$RUN" "$@" 2>&1 | tee "$RUN.log" | grep -v '"step"' | cut -c1-600
rc=${PIPESTATUS[0]}
cp "$RUN.log" "$RUN/stdout.log" 2>/dev/null
tar -C "$RUN" -cf - . | split -b 15M - "$OUT/run.tar.part-"
ls -l "$OUT"
exit "$rc"
