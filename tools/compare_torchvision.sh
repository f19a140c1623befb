#!/usr/bin/env bash
# The engine against PyTorch on a full-size torchvision VGG with seeded random weights:
# exports it with export_torchvision.py (PyTorch's logits on the fixture photos beside it),
# runs `vgg infer` on the same photos (the engine's own preprocessing), and compares logits
# (relative L2) and top-5. Needs torch, torchvision, safetensors, numpy; about 1.2 GB in
# $TMPDIR. Usage: tools/compare_torchvision.sh [ARCH] [PRECISION]   (default vgg16 f32)
set -euo pipefail
arch=${1:-vgg16}
precision=${2:-f32}
py=${PYTHON:-python3}
here=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
imgs=("$here/tests/fixtures/images/astronaut.jpg" "$here/tests/fixtures/images/chelsea.png"
      "$here/tests/fixtures/images/rocket_exif6.jpg")
"$py" "$here/tools/export_torchvision.py" "$arch" --random --seed 0 -o "$tmp/w.safetensors" \
    --logits "$tmp/torch.safetensors" --images "${imgs[@]}"
last=$(cargo run --release --quiet --manifest-path "$here/Cargo.toml" -- summary -m "$arch" \
       | awk '/^fc/ {l=$1} END {print l}')
cargo run --release --quiet --manifest-path "$here/Cargo.toml" -- infer -m "$arch" \
    -w "$tmp/w.safetensors" --precision "$precision" --features "$last" --out "$tmp/ours.npy" \
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
