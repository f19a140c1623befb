#!/usr/bin/env bash
# The engine in a browser: builds the page (web/) for wasm32, serves it on 127.0.0.1 and
# drives headless Chromium (WebGPU on SwiftShader underneath, no GPU needed) through it
# with playwright-core (web/test.mjs): the digit model, then the conformance suite's quick
# set. It fails on any console error, a failed run, a wrong prediction among the digits
# the page shows, a held-out count other than `vgg demo`'s on this machine, a
# conformance case that fails, top-5 classes of a picked weights file and images other
# than `vgg infer`'s, or a benchmark row that fails. It leaves the page's conformance report
# (JSON and Markdown, as `vgg check` writes them) and a screenshot of the page in
# target/browser/. Installs what is missing: Debian's chromium, wasm-bindgen-cli at the
# version web/Cargo.toml pins (tools/build_web.sh), the wasm32 target, playwright-core.
#
# tools/browser_test.sh [PORT]
set -euo pipefail
cd "$(dirname "$0")/.."
port=${1:-8937}
command -v chromium >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y chromium
rustup target add wasm32-unknown-unknown
(
    cd web
    cargo fmt --check
    cargo clippy --quiet --release --target wasm32-unknown-unknown -- -D warnings
)
bash tools/build_web.sh
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
