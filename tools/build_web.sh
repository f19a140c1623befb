#!/usr/bin/env bash
# Builds the browser page (web/): the engine compiled to wasm32 with web/'s exports, and
# wasm-bindgen's JavaScript beside it in web/pkg/. Then serve web/ (e.g.
# `python3 -m http.server 8000 --bind 127.0.0.1 --directory web`) and open it. Installs
# what is missing: the wasm32 target, and wasm-bindgen-cli at the version web/Cargo.toml
# pins (the two must match).
set -euo pipefail
cd "$(dirname "$0")/.."
wbg=0.2.130
if ! wasm-bindgen --version 2>/dev/null | grep -q " $wbg"; then
    # Not --locked: its lock pins crates newer than some registries' index.
    cargo install --quiet wasm-bindgen-cli --version "$wbg"
fi
rustup target add wasm32-unknown-unknown
(cd web && cargo build --quiet --release --target wasm32-unknown-unknown)
wasm-bindgen --target web --out-dir web/pkg web/target/wasm32-unknown-unknown/release/vgg_web.wasm
