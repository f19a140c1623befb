// The shape and bindings every forward FC variant shares (`#include "linear/header"`): rows
// ROW0 .. ROW0 + ROWS of the weight [N_OUT, K] are bound as binding 1.

override M: u32;
override K: u32;
override N_OUT: u32;
override ROW0: u32 = 0u;
override ROWS: u32;
#include "kernel/relu"

@group(0) @binding(0) var<storage, read> x: array<S>;
@group(0) @binding(1) var<storage, read> weight: array<S>;
@group(0) @binding(2) var<storage, read> bias: array<S>;
@group(0) @binding(3) var<storage, read_write> output: array<S>;
