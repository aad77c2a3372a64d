# Two commands do the whole set-up on a fresh machine (see README.md):
#   make demo   create .venv, install, fine-tune the default model on the bundled examples, export it to ONNX,
#               benchmark PyTorch against ONNX
#   make test   create .venv, install, run the whole test suite
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.tuneship-installed
DEMO_OUT ?= runs/relevance-minilm
DEMO_BUNDLE ?= runs/relevance-minilm-onnx
DEMO_BENCH ?= runs/relevance-minilm-bench
CHROMIUM := /usr/bin/chromium
export HF_HUB_DISABLE_TELEMETRY := 1

.PHONY: install demo test clean

install: $(STAMP)

# Re-installs whenever pyproject.toml changes. torch is pinned to the CPU build 2.13.0.
$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 10), "tuneship needs Python 3.10+"'
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[all]"
	touch $(STAMP)

demo: $(STAMP)
	HF_HUB_OFFLINE=1 $(VENV)/bin/tuneship train --base-model default \
		--train examples/relevance/train.csv --validation examples/relevance/validation.csv \
		--output $(DEMO_OUT) --overwrite
	HF_HUB_OFFLINE=1 $(VENV)/bin/tuneship evaluate --model $(DEMO_OUT) \
		--data examples/relevance/validation.csv
	HF_HUB_OFFLINE=1 $(VENV)/bin/tuneship predict --model $(DEMO_OUT) \
		--text "The city council approved a new network of protected bike lanes on Tuesday." \
		--text-pair "Parking will be a nightmare."
	HF_HUB_OFFLINE=1 $(VENV)/bin/tuneship export --model $(DEMO_OUT) --output $(DEMO_BUNDLE) --overwrite
	HF_HUB_OFFLINE=1 $(VENV)/bin/tuneship evaluate --bundle $(DEMO_BUNDLE) \
		--data examples/relevance/validation.csv
	HF_HUB_OFFLINE=1 $(VENV)/bin/tuneship bench --model $(DEMO_OUT) --bundle $(DEMO_BUNDLE) \
		--data examples/relevance/validation.csv --seq-lens 32,128 --batch-sizes 1,32 --output $(DEMO_BENCH)
	@echo
	@echo "Fine-tuned model: $(DEMO_OUT)/ (a Hugging Face checkpoint: weights, tokenizer, metrics.json,"
	@echo "training_curve.png, confusion_matrix.png and a README.md model card)."
	@echo "ONNX bundle:      $(DEMO_BUNDLE)/ (fp32 and int8 ONNX models, tokenizer, tuneship.json manifest"
	@echo "with the parity and accuracy gates, model card); serving loads it without torch."
	@echo "Benchmark:        $(DEMO_BENCH)/ (bench.md: the tables above; bench.json: every figure; bench.png)."
	@echo "Next:"
	@echo "  $(VENV)/bin/tuneship serve --bundle $(DEMO_BUNDLE)     (HTTP API on 127.0.0.1:8000, docs at /docs)"
	@echo "  $(VENV)/bin/tuneship predict --bundle $(DEMO_BUNDLE) --text \"<article>\" --text-pair \"<comment>\""
	@echo "  $(VENV)/bin/tuneship predict --bundle $(DEMO_BUNDLE) --data <file.csv> --output <predictions.csv>"
	@echo "  $(VENV)/bin/tuneship evaluate --bundle $(DEMO_BUNDLE) --data <labelled file>"
	@echo "  $(VENV)/bin/tuneship bench --model $(DEMO_OUT) --bundle $(DEMO_BUNDLE)   (all lengths and batch sizes)"
	@echo "  $(VENV)/bin/tuneship train --train <your data.csv> --output runs/<name>   (see README.md)"

test: $(STAMP) $(CHROMIUM)
	HF_HUB_OFFLINE=1 $(PY) -m pytest -ra $(PYTEST_ARGS)

# The browser test drives Debian's Chromium with Playwright. Installing it needs root; without it the test skips.
$(CHROMIUM):
	-command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ] && apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null

clean:
	rm -rf $(VENV) runs .pytest_cache
