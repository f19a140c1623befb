// The shape and bindings every forward conv variant shares
// (`#include "conv/forward/header"`); each variant declares binding 1, the weights, in the
// layout it packs them in.

#include "conv/shape"

#include "kernel/relu"

@group(0) @binding(0) var<storage, read> input: array<S>;
@group(0) @binding(2) var<storage, read> bias: array<S>;
@group(0) @binding(3) var<storage, read_write> output: array<S>;
