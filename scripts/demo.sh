#!/usr/bin/env bash
# `make demo`: what this machine offers (`llmstudio env`), then a forward pass through a model folder.
# Until a real small model ships with setup (the inference issue), the model is a tiny RANDOM Llama.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
LLMS=$BUILD/bin/llmstudio
echo "== llmstudio env"
"$LLMS" env
MODEL=${MODEL:-$BUILD/demo/tiny-random-llama}
if [[ ! -f $MODEL/config.json ]]; then
  echo "== no MODEL given: writing a tiny random Llama (placeholder; its predictions are meaningless)"
  .venv/bin/python scripts/make_tiny_model.py "$MODEL" 2>/dev/null
fi
echo "== llmstudio info $MODEL"
"$LLMS" info "$MODEL"
echo "== llmstudio forward -m $MODEL --ids '1 15 27 3'"
"$LLMS" forward -m "$MODEL" --ids "1 15 27 3"
echo
echo "Try your own Llama/Mistral/Qwen2 folder: make demo MODEL=/path/to/hf-model"
