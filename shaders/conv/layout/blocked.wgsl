// For `#include`: the value at each index of the packed layout the plain, workgroup-memory
// and subgroup forward kernels read, from torchvision's [c_out, c_in, k, k] weight `src`,
// zero padded to whole channel blocks: [c_out / TM][c_in][k][k][TM] (plain and
// workgroup-memory variants), or [c_out / 8][c_in][k][8][4] (subgroup variant: one vec4 of
// taps per channel and kernel row). pack.wgsl stores it as f32, pack_half.wgsl as f16.

override C_IN: u32;
override C_OUT: u32;
override KS: u32;
override TM: u32;
override SUBGROUP: bool;

@group(0) @binding(0) var<storage, read> src: array<f32>;

// Elements of the packed layout.
fn packed_len() -> u32 {
    let blocks = (C_OUT + TM - 1u) / TM;
    return select(blocks * C_IN * KS * KS * TM, blocks * C_IN * KS * TM * 4u, SUBGROUP);
}

fn packed_value(i: u32) -> f32 {
    var co: u32;
    var ci: u32;
    var ky: u32;
    var kx: u32;
    if (SUBGROUP) {
        kx = i % 4u;
        let m = (i / 4u) % TM;
        ky = (i / (4u * TM)) % KS;
        ci = (i / (4u * TM * KS)) % C_IN;
        co = (i / (4u * TM * KS * C_IN)) * TM + m;
    } else {
        let m = i % TM;
        kx = (i / TM) % KS;
        ky = (i / (TM * KS)) % KS;
        ci = (i / (TM * KS * KS)) % C_IN;
        co = (i / (TM * KS * KS * C_IN)) * TM + m;
    }
    if (co < C_OUT && kx < KS) { return src[((co * C_IN + ci) * KS + ky) * KS + kx]; }
    return 0.0;
}
