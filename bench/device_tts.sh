#!/usr/bin/env bash
# One prepared run of bench/tts.py on a lent GPU machine (no network there).
# Here first: wheels for what that machine's python3 (3.12, with torch + torchaudio) lacks, into .whl/:
#   pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#     --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux_2_28_x86_64 \
#     --platform any -d .whl coqui-tts==0.28.0 coqpit-config==0.2.5 coqui-tts-trainer==0.4.0 anyascii inflect \
#     typeguard more-itertools ko-speech-tools librosa==0.11.0 audioread soxr pooch decorator \
#     monotonic-alignment-search num2words pysbd torchcodec==0.9.1 espeakng-loader lameenc pyloudnorm \
#     soundfile structlog cffi pycparser platformdirs
# Then run this script there with .whl carried. Results land in $OUT (or ./bench-out).
set -uo pipefail
out="${OUT:-bench-out}"
mkdir -p "$out"
python3 -m pip install -q --no-index --no-deps .whl/*.whl 2>&1 | tail -3
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader | tee "$out/gpu-name.txt"
python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())"
timeout 120 python3 -m bench.tts --json 2>&1 | grep -v '\[info' | tee "$out/espeak.txt"
timeout 300 python3 -m bench.tts --engine coqui --standard --json 2>&1 | grep -v '\[info' | tee "$out/coqui-gpu.txt"
CUDA_VISIBLE_DEVICES="" timeout 200 python3 -m bench.tts --engine coqui --standard --count 5 --json 2>&1 \
  | grep -v '\[info' | tee "$out/coqui-cpu.txt"
