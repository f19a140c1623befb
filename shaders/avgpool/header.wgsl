// The shape and PyTorch's adaptive bins, shared by the forward and backward kernels
// (`#include "avgpool/header"`): output row i averages input rows floor(i * H / OH) up to
// ceil((i + 1) * H / OH), likewise columns.

#include "kernel/nchw"

override OH: u32 = 7u;
override OW: u32 = 7u;

/// The rows [start, end) of output row `o`.
fn rows(o: u32) -> vec2<u32> {
    return vec2<u32>(o * H / OH, ((o + 1u) * H + OH - 1u) / OH);
}

/// The columns [start, end) of output column `o`.
fn cols(o: u32) -> vec2<u32> {
    return vec2<u32>(o * W / OW, ((o + 1u) * W + OW - 1u) / OW);
}
