#!/usr/bin/env bash
# validate.sh COMMAND [ARGS...]: runs COMMAND under the Khronos validation layer (core and
# synchronisation validation) and fails if the layer reports anything about the engine's use
# of Vulkan. The layer and its manifest come from tools/drivers.sh (VGG_DRIVERS, default
# target/drivers). Messages go to a log; each distinct message ID is counted and printed.
#
# One ID is filtered, and only that one: VUID-StandaloneSpirv-None-10684, naga's explicit
# layout decorations (ArrayStride) on private and function-scope arrays, which SPIR-V 1.5+
# forbids; a bug of wgpu's shader compiler (gfx-rs/wgpu#7696, unfixed in naga 30.0.2), not
# of the engine's API use. VGG_VALIDATION_ALLOW adds IDs to filter (space-separated).
set -uo pipefail
drivers="$(realpath -m "${VGG_DRIVERS:-target/drivers}")"
[ -e "$drivers/layers/VkLayer_khronos_validation.json" ] || {
    echo "validate.sh: no validation layer manifest in $drivers/layers: run tools/drivers.sh" >&2
    exit 2
}
allow="VUID-StandaloneSpirv-None-10684 ${VGG_VALIDATION_ALLOW:-}"
work="$(mktemp -d)"
log="$work/validation.log"
cat >"$work/vk_layer_settings.txt" <<SETTINGS
khronos_validation.debug_action = VK_DBG_LAYER_ACTION_LOG_MSG
khronos_validation.log_filename = $log
khronos_validation.report_flags = error,warn,perf
khronos_validation.validate_sync = true
khronos_validation.message_limit = -1
SETTINGS
touch "$log"
VK_LAYER_PATH="$drivers/layers" VK_INSTANCE_LAYERS=VK_LAYER_KHRONOS_validation \
    VK_LAYER_SETTINGS_PATH="$work/vk_layer_settings.txt" "$@"
rc=$?
# Every message names its ID in brackets: "[ VUID-... ]" or "[ SYNC-HAZARD-... ]".
ids="$(grep -oE '\[ [A-Za-z0-9_-]+ \]' "$log" | tr -d '[] ' | sort | uniq -c | sort -rn)"
messages="$(grep -cE '^(Validation|VALIDATION)|\] Object' "$log" || true)"
bad=0
if [ -n "$ids" ]; then
    echo "validation layer messages by ID ($log):"
    while read -r n id; do
        if [[ " $allow " == *" $id "* ]]; then
            echo "  $n $id (filtered: a known naga bug, see tools/validate.sh)"
        else
            echo "  $n $id"
            bad=1
        fi
    done <<<"$ids"
else
    echo "validation layer: no messages ($messages lines logged)"
fi
if [ "$bad" = 1 ]; then
    echo "validate.sh: the validation layer reported the messages above; the first of them:" >&2
    grep -m 3 -A 4 -vE 'StandaloneSpirv-None-10684' "$log" | head -30 >&2
    exit 1
fi
exit "$rc"
