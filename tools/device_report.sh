#!/usr/bin/env bash
# Conformance and speed on a lent GPU machine, in one call: adapters, `vgg check --all`,
# the benchmark suite, and PyTorch (CUDA) at the same shapes for comparison.
#
#   tools/device_report.sh BIN OUTDIR [STEPS]
#
# BIN is a release `vgg` built elsewhere (the GPU machine has no Rust toolchain); STEPS is
# a comma-separated subset of devices,check,bench,e2e,torch (default: all). Every step's output
# goes to OUTDIR/log.txt; reports to OUTDIR/*.json and *.md. A step that fails is logged
# and the next one still runs, so one call returns everything it could measure.
set -uo pipefail
bin=$1
out=$2
steps=${3:-devices,check,bench,e2e,torch}
mkdir -p "$out"
log=$out/log.txt
want() { [[ ",$steps," == *",$1,"* ]]; }
step() { echo "== $* ($(date -u +%H:%M:%S))" | tee -a "$log"; }

export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-/tmp/xdg-runtime}
mkdir -p -m 0700 "$XDG_RUNTIME_DIR"
# The NVIDIA driver's loader manifests live outside the default search paths there.
nv=/usr/local/nvidia/share
[ -f $nv/vulkan/icd.d/nvidia_icd.json ] && export VK_DRIVER_FILES=$nv/vulkan/icd.d/nvidia_icd.json
[ -f $nv/glvnd/egl_vendor.d/10_nvidia.json ] &&
    export __EGL_VENDOR_LIBRARY_FILENAMES=$nv/glvnd/egl_vendor.d/10_nvidia.json

if want devices; then
    step devices
    nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv 2>&1 | tee -a "$log"
    "$bin" devices 2>&1 | tee -a "$log"
fi
if want check; then
    step check --all
    timeout 300 "$bin" check --all --full --json "$out/conformance.json" \
        --markdown "$out/conformance.md" 2>&1 | tee -a "$log"
    echo "exit ${PIPESTATUS[0]}" | tee -a "$log"
fi
if want bench; then
    # Tuned per layer shape first (at the first batch size), so the end-to-end runs use the
    # best variant found for each layer on this adapter.
    step bench vgg16
    VGG_TUNING_FILE="$out/tuning.json" timeout 420 "$bin" bench --backend vulkan --no-cpu \
        --tune --batch 1,32 --networks vgg16 --e2e-batch 32,128 --json "$out/bench.json" \
        --markdown "$out/bench.md" 2>&1 | tee -a "$log"
fi
if want e2e; then
    # What a user runs: VGG16 inference at batch 1, 32 and 128 and a VGG16 training step at
    # batch 32, each in f32 and f16 (tensor cores where the driver lists cooperative
    # matrices; the f16 step is mixed precision with loss scaling), nothing else. A row that
    # fails is listed under "failures" and the others are still written. One untimed pass first brings the clocks up (runs minutes apart on an
    # H100 differed 5x), then medians of 5.
    step e2e warm-up
    VGG_TUNING_FILE="$out/tuning.json" timeout 120 "$bin" bench --backend vulkan --no-cpu \
        --kernels none --networks vgg16 --e2e-batch 32,128 --precision f32,f16 --train vgg16 \
        --train-batch 32 --runs 1 >/dev/null 2>&1
    step e2e
    VGG_TUNING_FILE="$out/tuning.json" timeout 180 "$bin" bench --backend vulkan --no-cpu \
        --kernels none --networks vgg16 --e2e-batch 32,128 --precision f32,f16 --train vgg16 \
        --train-batch 32 --runs 5 --json "$out/e2e.json" --markdown "$out/e2e.md" 2>&1 |
        tee -a "$log"
fi
if want torch; then
    # PyTorch in the same call: the kernel shapes (true f32: TF32 off, cudnn.benchmark on),
    # then the end-to-end rows (inference and the training step) in fp32, tf32 and AMP
    # fp16 with channels_last.
    for r in bench e2e; do
        [ -f "$out/$r.json" ] || continue
        step pytorch cuda "$r"
        timeout 150 python3 tools/bench_torch.py --shapes-from "$out/$r.json" --device cuda \
            -o "$out/torch-cuda-$r.json" 2>&1 | tee -a "$log"
        "$bin" bench --report "$out/$r.json" --compare "$out/torch-cuda-$r.json" 2>&1 |
            tee -a "$log"
    done
fi
step done
