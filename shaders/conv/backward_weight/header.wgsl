// The shape and bindings every weight-gradient kernel shares
// (`#include "conv/backward_weight/header"`): the forward's input and the output gradient
// in, and `out`, which is dw itself or, where the kernel splits the reduction in chunks,
// the chunks' partial sums that conv/backward_weight/reduce adds in order. ACCUMULATE adds
// to dw (gradient accumulation).

#include "conv/shape"

override ACCUMULATE: bool = false;

@group(0) @binding(0) var<storage, read> input: array<f32>;
@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
