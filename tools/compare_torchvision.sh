#!/usr/bin/env bash
# The engine against PyTorch on a full-size torchvision VGG with seeded random weights:
# exports it with export_torchvision.py (PyTorch's logits on the fixture photos beside it),
# runs `vgg infer` on the same photos (the engine's own preprocessing), and compares logits
# (relative L2) and top-5. Needs torch, torchvision, safetensors, numpy; about 1.2 GB in
# $TMPDIR. FORMAT is how the weights reach the engine: safetensors (export_torchvision.py's,
# with its model card), or the ONNX file of one of PyTorch's exporters at its defaults,
# onnx-dynamo (torch.export-based, weights in a .data file beside it; needs onnx and
# onnxscript) or onnx-torchscript (needs onnx); an ONNX file is read with no model flags.
# Usage: tools/compare_torchvision.sh [ARCH] [PRECISION] [FORMAT]
#        (default vgg16 f32 safetensors)
set -euo pipefail
arch=${1:-vgg16}
precision=${2:-f32}
format=${3:-safetensors}
py=${PYTHON:-python3}
here=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
imgs=("$here/tests/fixtures/images/astronaut.jpg" "$here/tests/fixtures/images/chelsea.png"
      "$here/tests/fixtures/images/rocket_exif6.jpg")
case "$format" in
    safetensors) weights=$tmp/w.safetensors; export=() ;;
    onnx-dynamo) weights=$tmp/w.onnx; export=(--onnx dynamo) ;;
    onnx-torchscript) weights=$tmp/w.onnx; export=(--onnx torchscript) ;;
    *) echo "FORMAT is safetensors, onnx-dynamo or onnx-torchscript, not '$format'" >&2; exit 2 ;;
esac
"$py" "$here/tools/export_torchvision.py" "$arch" --random --seed 0 -o "$weights" \
    "${export[@]}" --logits "$tmp/torch.safetensors" --images "${imgs[@]}"
# A safetensors export's card names the model as well, but the flag costs nothing there;
# the ONNX graph is the whole description of its model.
model=(-m "$arch")
[ "$format" = safetensors ] || model=()
last=$(cargo run --release --quiet --manifest-path "$here/Cargo.toml" -- summary -m "$arch" \
       | awk '/^fc/ {l=$1} END {print l}')
cargo run --release --quiet --manifest-path "$here/Cargo.toml" -- infer "${model[@]}" \
    -w "$weights" --precision "$precision" --features "$last" --out "$tmp/ours.npy" \
    "${imgs[@]}"
"$py" - "$tmp" <<'PY'
import sys
import numpy as np
from safetensors.numpy import load_file
d = sys.argv[1]
t = load_file(f"{d}/torch.safetensors")["logits"]
g = np.load(f"{d}/ours.npy")
rel = np.linalg.norm(g - t) / np.linalg.norm(t)
same = [list(np.argsort(-a)[:5]) == list(np.argsort(-b)[:5]) for a, b in zip(g, t)]
print(f"logits relative L2 {rel:.2e}, max abs {np.abs(g - t).max():.2e}; top-5 equal: {same}")
sys.exit(0 if all(same) else 1)
PY
