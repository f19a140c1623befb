// Reorders a conv weight from torchvision's [c_out, c_in, k, k] into the layout the forward
// kernels read, zero padded to whole channel blocks: [c_out / TM][c_in][k][k][TM] (plain
// and workgroup-memory variants), or [c_out / 8][c_in][k][8][4] (subgroup variant: one vec4
// of taps per channel and kernel row). Training keeps weights in the canonical layout,
// where the optimizer and the gradient kernels work, and repacks them once per step on the
// GPU. One invocation per packed element.

override C_IN: u32;
override C_OUT: u32;
override KS: u32;
override TM: u32;
override SUBGROUP: bool;
override WG: u32 = 64u;

@group(0) @binding(0) var<storage, read> src: array<f32>;
@group(0) @binding(1) var<storage, read_write> dst: array<f32>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let i = (wid.x + wid.z * nwg.x) * WG + lid;
    let blocks = (C_OUT + TM - 1u) / TM;
    var co: u32;
    var ci: u32;
    var ky: u32;
    var kx: u32;
    if (SUBGROUP) {
        if (i >= blocks * C_IN * KS * TM * 4u) { return; }
        kx = i % 4u;
        let m = (i / 4u) % TM;
        ky = (i / (4u * TM)) % KS;
        ci = (i / (4u * TM * KS)) % C_IN;
        co = (i / (4u * TM * KS * C_IN)) * TM + m;
    } else {
        if (i >= blocks * C_IN * KS * KS * TM) { return; }
        let m = i % TM;
        kx = (i / TM) % KS;
        ky = (i / (TM * KS)) % KS;
        ci = (i / (TM * KS * KS)) % C_IN;
        co = (i / (TM * KS * KS * C_IN)) * TM + m;
    }
    var v = 0.0;
    if (co < C_OUT && kx < KS) { v = src[((co * C_IN + ci) * KS + ky) * KS + kx]; }
    dst[i] = v;
}
