// The training repack of a conv weight for the cooperative-matrix variants: the canonical
// f32 weight [C_OUT][ROW] (ROW = c_in * ks * ks) to f16 rows [M_PAD][K_PAD], zero padded to
// whole blocks of 64 rows and 16 columns, as the host's packing (ConvTune::pack) writes it.
// One invocation per pair of columns, written as one u32 by pack2x16float, so the kernel
// needs no shader-f16 of its own. K_PAD is a multiple of 16: a pair never straddles rows.

#include "kernel/elements"

override C_OUT: u32;
override ROW: u32;
override K_PAD: u32;
override M_PAD: u32;

@group(0) @binding(0) var<storage, read> weight: array<f32>;
@group(0) @binding(1) var<storage, read_write> packed: array<u32>;

fn elements() -> u32 { return M_PAD * K_PAD / 2u; }

fn at(co: u32, k: u32) -> f32 {
    if (co < C_OUT && k < ROW) {
        return weight[co * ROW + k];
    }
    return 0.0;
}

fn element(i: u32) {
    let co = (2u * i) / K_PAD;
    let k = (2u * i) % K_PAD;
    packed[i] = pack2x16float(vec2<f32>(at(co, k), at(co, k + 1u)));
}
