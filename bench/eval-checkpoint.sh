#!/usr/bin/env bash
# Exports a pretraining checkpoint to a model folder and evaluates it on MNIST
# (few-shot linear head, k = 1,2,5,10, 5 draws, full test split), as JSON.
#   bash bench/eval-checkpoint.sh <ckpt> <out-model-dir> <out.json> [extra eval args]
set -euo pipefail
ckpt=$1; dir=$2; out=$3; shift 3
npx tsx src/cli/main.ts export "$ckpt" "$dir" --force
npx tsx src/cli/main.ts eval --model "$dir" --shots 1,2,5,10 --seeds 5 --json "$@" > "$out"
