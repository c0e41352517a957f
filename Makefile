# Two commands for a fresh machine:  `make demo`  and  `make test`.
# Both create .venv, install torch's CPU wheel first, then the project with its extras.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Debian packages, installed only when missing and only when running as root. The test set: espeak-ng,
# flite and one festival voice make test speech; fluidsynth with a small GM soundfont and two small sound
# themes give the non-speech tests real recordings; sox and ffmpeg are used by ../shared/checks/bad_inputs.sh.
APT_PACKAGES := espeak-ng flite festival festvox-kallpc16k fluidsynth timgm6mb-soundfont oxygen-sounds \
	sound-theme-freedesktop alsa-utils sox ffmpeg
# The full set the corpus builder draws on (~2 GB download): every voice and sound package of docs/voices.md and
# docs/sources.md, the large tier (supertuxkart-data, widelands-data) included: the shipped default's corpus was
# made with it. Without the large tier `fdvad data synth --hours 10 --seed 1` makes other audio (673 instead of
# 795 noise sources in train) and the default scores AUROC 0.9916, not its card's 0.9890, on that test split.
# `make data-deps` installs it.
DATA_APT_PACKAGES := festvox-kdlpc16k festvox-us-slt-hts festvox-ca-ona-hts festvox-italp16k festvox-itapc16k \
	festvox-czech-dita festvox-czech-krb festvox-czech-machac festvox-czech-ph festvox-suopuhe-lj \
	festvox-suopuhe-mv festvox-hi-nsk festvox-mr-nsk festvox-te-nsk festvox-ru \
	asc-music bucklespring-data colobot-common-sounds deepin-sound-theme eiskaltdcpp-sounds fluid-soundfont-gm \
	freepats frozen-bubble-data grandorgue-demo hyperrogue-music lbreakout2-data lomiri-sounds moon-lander-data \
	musescore-general-soundfont-small openttd-opensfx planetblupi-music-ogg singularity-music sonic-pi-samples \
	sound-icons tecnoballz-data warzone2100-music wesnoth-1.16-music supertuxkart-data widelands-data

.PHONY: install data-deps demo test test-fast bench model model-finish model-fd-silero experiment-silero experiment-silero-smoke experiment experiment-smoke experiment-transformer experiment-transformer-smoke sample clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then echo "apt-get install$$missing"; \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing) >/dev/null || exit 1; \
	  else echo "warning: missing Debian packages:$$missing (run as root or install them; speech-generating tests will be skipped)"; fi; \
	fi
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e ".[compare,eval,train,subtitle,enhance,dev]"
	@$(BIN)/python -c "import torch; assert torch.__version__.startswith('2.13.0'), torch.__version__"
	touch $@

data-deps: install
	@if [ "$$(id -u)" != 0 ]; then echo "run as root to apt-get install: $(DATA_APT_PACKAGES)"; exit 1; fi
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(DATA_APT_PACKAGES) >/dev/null

demo: install
	$(BIN)/fdvad vad examples/sample.flac --format json

test: install
	$(BIN)/python -m pytest -n 2 -q

test-fast: install
	$(BIN)/python -m pytest -n 2 -q -m "not slow"

bench: install
	$(BIN)/python bench/vad_speed.py

# Re-make the shipped default model (4,000 steps at about 0.5 s each on 2 idle CPU cores).
# The shipped default model: corpus, training, tuned post-processing, scores, comparison, model card.
# Resumable: run it again after an interruption. `make model MODEL_INSTALL=` leaves src/fdvad/weights alone.
MODEL_RECIPE ?= recipes/default.yaml
MODEL_RUN ?= runs/default
MODEL_CORPUS ?= runs/default-corpus
MODEL_INSTALL ?= --install src/fdvad/weights
MODEL_CARD_ARGS ?=
# what model-finish tunes the post-processing on, and for what
MODEL_TUNE_SET ?= $(MODEL_CORPUS)/validation/manifest.json
MODEL_TUNE_OBJECTIVE ?= f1
model: install
	@if [ -e $(MODEL_RUN)/checkpoints/last.ckpt ]; then resume=--resume; fi; \
	  $(BIN)/fdvad train $(MODEL_RECIPE) $$resume
	$(MAKE) model-finish

# What every shipped model goes through after training: tuned post-processing, scores, comparison, card.
model-finish: install
	$(BIN)/fdvad tune $(MODEL_RUN)/model.safetensors $(MODEL_TUNE_SET) --objective $(MODEL_TUNE_OBJECTIVE) --write
	$(BIN)/fdvad eval $(MODEL_RUN)/model.safetensors $(MODEL_CORPUS)/test/manifest.json --out $(MODEL_RUN)/eval-test --overwrite
	$(BIN)/fdvad eval $(MODEL_RUN)/model.safetensors $(MODEL_CORPUS)/test_unseen_language/manifest.json --out $(MODEL_RUN)/eval-unseen --overwrite
	$(BIN)/fdvad compare $(MODEL_CORPUS)/test/manifest.json --out $(MODEL_RUN)/compare-test --overwrite \
	  --systems fdvad:$(MODEL_RUN)/model.safetensors,silero,webrtc,pocketsphinx
	$(BIN)/fdvad compare $(MODEL_CORPUS)/test_unseen_language/manifest.json --out $(MODEL_RUN)/compare-unseen --overwrite \
	  --systems fdvad:$(MODEL_RUN)/model.safetensors,silero,webrtc,pocketsphinx
	$(BIN)/python bench/real_audio.py --models $(MODEL_RUN)/model.safetensors --thresholds 0.5 --json $(MODEL_RUN)/real_audio.json
	$(BIN)/python scripts/model_card.py $(MODEL_RUN) $(MODEL_INSTALL) $(MODEL_CARD_ARGS)

# The default distilled from Silero VAD's features (docs/experiments/fd_from_silero.md): distillation, then
# fine-tuning, then as `make model`. The default it replaces is kept as MODEL_KEEP (load_vad("synthetic-v1")),
# or with FD_SILERO_AS=NAME it ships beside the default.
FD_SILERO_RUN ?= runs/fd_from_silero
MODEL_KEEP ?= synthetic-v1
# the scale of the experiment's candidate (its train_long): the recipes' own 600 x 16 is its 3-seed comparison;
# FD_SILERO_SEED picks which of the candidate recipe's seeds (0, 1, 2 in the experiment) to make
FD_SILERO_SEED ?= 0
FD_SILERO_SCALE := train.steps=3000 train.batch_size=32 train.val_every=1000 data.max_validation_items=120 \
	train.seed=$(FD_SILERO_SEED)
# the real dev set: codec2-examples' recordings with Silero's segments as labels; fine-tuning keeps the round
# with the highest AUROC there and the post-processing is tuned there for the lowest detection error rate
FD_SILERO_DEV := $(FD_SILERO_RUN)/real_dev
# a name (e.g. fd-silero-v1) ships the model beside the default as load_vad(NAME) instead of replacing it
FD_SILERO_AS ?=
model-fd-silero: install
	@dpkg -s codec2-examples >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && DEBIAN_FRONTEND=noninteractive \
	  apt-get install -y -qq codec2-examples >/dev/null; } || echo "warning: codec2-examples missing (real unlabelled speech, real dev set)"
	@if [ -e $(FD_SILERO_RUN)/distill/checkpoints/last.ckpt ]; then resume=--resume; fi; \
	  unlabelled=; [ -d /usr/share/codec2/wav ] || unlabelled='distill.unlabelled=[]'; \
	  $(BIN)/fdvad distill recipes/fd_from_silero.yaml out=$(FD_SILERO_RUN)/distill $(FD_SILERO_SCALE) $$unlabelled $$resume
	@if [ -d /usr/share/codec2/wav ] && [ ! -e $(FD_SILERO_DEV)/rttm ]; then \
	  $(BIN)/fdvad data pseudo-label /usr/share/codec2/wav --out $(FD_SILERO_DEV) --labeller silero; fi
	@if [ -e $(FD_SILERO_RUN)/finetune/checkpoints/last.ckpt ]; then resume=--resume; fi; \
	  if [ -e $(FD_SILERO_DEV)/rttm ]; then set -- train.val_every=250 "data.extra_validation={real: $(FD_SILERO_DEV)}" \
	    train.select=val_real_auroc; tune="MODEL_TUNE_SET=$(FD_SILERO_DEV) MODEL_TUNE_OBJECTIVE=deter"; fi; \
	  $(BIN)/fdvad finetune recipes/fd_from_silero_finetune.yaml out=$(FD_SILERO_RUN)/finetune \
	    model.init=$(FD_SILERO_RUN)/distill/model.safetensors $(FD_SILERO_SCALE) "$$@" $$resume && \
	  $(MAKE) model-finish MODEL_RUN=$(FD_SILERO_RUN)/finetune $$tune MODEL_CARD_ARGS="--make-target 'make model-fd-silero' \
	    --recipes recipes/fd_from_silero.yaml,recipes/fd_from_silero_finetune.yaml \
	    $(if $(FD_SILERO_AS),--install-as $(FD_SILERO_AS),$(if $(MODEL_INSTALL),$(if $(wildcard src/fdvad/weights/$(MODEL_KEEP).safetensors),,--keep-previous $(MODEL_KEEP))))"

# The Feature Distillation experiment (docs/experiments/fd_marblenet.md); the smoke version takes minutes.
experiment: install
	$(BIN)/python experiments/fd_marblenet/run.py
experiment-smoke: install
	$(BIN)/python experiments/fd_marblenet/run.py --smoke
# FD on the audio transformer: position encodings and the paper's analyses (docs/experiments/fd_transformer.md).
experiment-transformer: install
	$(BIN)/python experiments/fd_transformer/run.py
experiment-transformer-smoke: install
	$(BIN)/python experiments/fd_transformer/run.py --smoke
# Silero VAD as the teacher, against labels only, classical distillation and FD from our own model
# (docs/experiments/fd_from_silero.md). Two processes of one thread each (MarbleNet's backward pass barely uses a
# second thread): the longer candidate in one, the 3-seed comparison in the other. The smoke version takes a minute.
experiment-silero: install
	$(BIN)/python experiments/fd_from_silero/run.py --long-only --threads 1 & \
	  $(BIN)/python experiments/fd_from_silero/run.py --threads 1; rc=$$?; wait $$! && exit $$rc
experiment-silero-smoke: install
	$(BIN)/python experiments/fd_from_silero/run.py --smoke

# Re-make the bundled sample examples/sample.flac.
sample: install
	$(BIN)/python scripts/make_sample.py examples/sample.flac

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache
