#!/usr/bin/env bash
# Installs the Vulkan drivers this machine can reach without a GPU beside the system's Mesa,
# and writes what selects each one into DIR (default target/drivers):
#   DIR/icd/mesa25_lvp.json        Mesa 25's lavapipe (bookworm-backports, extracted, not installed)
#   DIR/icd/swiftshader.json       Google's SwiftShader (Debian's chromium-common)
#   DIR/layers/VkLayer_khronos_validation.json   the Khronos validation layer (same package)
#   DIR/env                        VK_ADD_DRIVER_FILES for both ICDs, to `source`
# The system's Mesa 22 lavapipe stays the default; `vgg devices` then lists all of them.
# Idempotent: what is already there is kept. Needs root for apt (as CI and the dev machine are).
set -euo pipefail
dir="$(realpath -m "${1:-target/drivers}")"
mkdir -p "$dir/icd" "$dir/layers"

# SwiftShader and the validation layer ship in chromium-common.
if [ ! -e /usr/lib/chromium/libvk_swiftshader.so ]; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium-common >/dev/null
fi
# The shipped ICD JSON names its library relative to its own folder; an absolute copy can
# live anywhere.
cat >"$dir/icd/swiftshader.json" <<JSON
{"file_format_version": "1.0.0",
 "ICD": {"library_path": "/usr/lib/chromium/libvk_swiftshader.so", "api_version": "1.0.5"}}
JSON
# No layer manifest ships with the layer: this one names it.
cat >"$dir/layers/VkLayer_khronos_validation.json" <<JSON
{"file_format_version": "1.2.0",
 "layer": {"name": "VK_LAYER_KHRONOS_validation", "type": "GLOBAL",
           "library_path": "/usr/lib/chromium/libVkLayer_khronos_validation.so",
           "api_version": "1.3.0", "implementation_version": "1",
           "description": "Khronos validation layer (from chromium-common)"}}
JSON

# Mesa 25's lavapipe from bookworm-backports, unpacked beside the system Mesa.
lvp="$dir/mesa25/usr/lib/x86_64-linux-gnu/libvulkan_lvp.so"
if [ ! -e "$lvp" ]; then
    src=/etc/apt/sources.list.d/vgg-backports.sources
    if [ ! -e "$src" ]; then
        cat >"$src" <<SRC
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
    fi
    apt-get update -q >/dev/null
    tmp="$(mktemp -d)" && chmod 0755 "$tmp"  # apt's download user writes into it
    (cd "$tmp" && apt-get download -q mesa-vulkan-drivers/bookworm-backports >/dev/null)
    dpkg -x "$tmp"/mesa-vulkan-drivers_*.deb "$dir/mesa25"
    rm -rf "$tmp"
fi
cat >"$dir/icd/mesa25_lvp.json" <<JSON
{"file_format_version": "1.0.1",
 "ICD": {"library_path": "$lvp", "api_version": "1.4.305"}}
JSON

echo "export VK_ADD_DRIVER_FILES=$dir/icd/mesa25_lvp.json:$dir/icd/swiftshader.json" >"$dir/env"
echo "drivers in $dir: $(ls "$dir/icd" | tr '\n' ' ')"
