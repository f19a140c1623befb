#!/usr/bin/env bash
# The engine in a browser: builds the page (web/) for wasm32, serves it on 127.0.0.1 and
# drives headless Chromium (WebGPU on SwiftShader underneath, no GPU needed) through it
# with playwright-core (web/test.mjs): the digit model, then the conformance suite's quick
# set. It fails on any console error, a failed run, a wrong prediction among the digits
# the page shows, a held-out count other than `vgg demo`'s on this machine, a
# conformance case that fails, or top-5 classes of a picked weights file and images other
# than `vgg infer`'s. Installs what is missing: Debian's chromium,
# wasm-bindgen-cli at the version web/Cargo.toml pins, the wasm32 target, playwright-core.
#
# tools/browser_test.sh [PORT]
set -euo pipefail
cd "$(dirname "$0")/.."
port=${1:-8937}
wbg=0.2.130
command -v chromium >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y chromium
if ! wasm-bindgen --version 2>/dev/null | grep -q " $wbg"; then
    # Not --locked: its lock pins crates newer than some registries' index.
    cargo install --quiet wasm-bindgen-cli --version "$wbg"
fi
rustup target add wasm32-unknown-unknown
(
    cd web
    cargo fmt --check
    cargo clippy --quiet --release --target wasm32-unknown-unknown -- -D warnings
    cargo build --quiet --release --target wasm32-unknown-unknown
)
wasm-bindgen --target web --out-dir web/pkg web/target/wasm32-unknown-unknown/release/vgg_web.wasm
(cd web && npm install --silent --no-audit --no-fund)
# The native count the page must match: "accuracy 97.4% (974 of 1000) in 0.37 s".
native=$(cargo run --release --quiet -- demo | sed -n 's/^accuracy .*(\([0-9]*\) of 1000).*/\1/p')
[ -n "$native" ] || { echo "vgg demo printed no accuracy" >&2; exit 1; }
# A user's files: the page's top-5 must be `vgg infer`'s (PNGs: JPEG decoding differs
# between libjpeg-turbo natively and the image crate in a page).
weights=tests/fixtures/tiny_a.onnx
images=(tests/fixtures/images/chelsea.png tests/fixtures/images/coffee_rgba.png
    tests/fixtures/images/camera_gray.png)
mkdir -p target
cargo run --release --quiet -- infer --weights "$weights" "${images[@]}" --json \
    >target/browser_infer.json
# Another server on the port (a run left behind) would answer in place of this one.
if curl -sf "http://127.0.0.1:$port/" >/dev/null; then
    echo "port $port is in use: tools/browser_test.sh PORT picks another" >&2
    exit 1
fi
python3 -m http.server "$port" --bind 127.0.0.1 --directory web >/dev/null 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true' EXIT
for _ in $(seq 50); do
    curl -sf "http://127.0.0.1:$port/" >/dev/null && break
    sleep 0.1
done
kill -0 "$server" 2>/dev/null || { echo "the page's server did not start" >&2; exit 1; }
node web/test.mjs "http://127.0.0.1:$port/" "$native" "$weights" target/browser_infer.json \
    "${images[@]}"
