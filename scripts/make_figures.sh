#!/usr/bin/env bash
# Reproduce docs/fig4_window_sweep.png (paper Fig. 4) and docs/fig5_alignment.png (Fig. 5).
#
# Run from the repository root with mmalign installed. The sweep is a resumable grid: a second
# call skips the runs already in $OUT/sweep/window_sweep.sqlite. Fig. 5 reuses the sweep's
# full-size K=8, seed-0 run (the paper draws Fig. 5 with window size 8). docs/analysis.md
# records the machine, the wall time and the numbers behind the figures.
set -euo pipefail
OUT=${OUT:-runs/figures}

# Fig. 4: MM-Align on the default synthetic data (CMU-MOSI-sized), T->V, p = 0.1, 2 seeds
mmalign sweep-window --data synthetic --pairs t:v --ps 0.1 --seeds 2 \
    --windows 1,2,4,8,16,32,256 --set epochs=15 --set patience=5 \
    --workers 2 --threads-per-worker 1 --no-progress \
    --out "$OUT/sweep" --png docs/fig4_window_sweep.png

# Fig. 5: the K=8, seed-0 run of the sweep; samples of length >= 20, top-left 20 x 20 block
RUN=$(grep -lE '"window": 8$' "$OUT"/sweep/grid/mm-align/t-v/p0.1_seed0_*/spec.json | xargs dirname)
mmalign plot-alignment "$RUN" --min-length 20 --out docs/fig5_alignment.png \
    --npz "$OUT/fig5_alignment.npz"
