// Fully connected layer on one row chunk of the weight: for rows o in [ROW0, ROW0 + ROWS),
// y[m, o] = sum_k x[m, k] * w[o - ROW0, k] + b[o], optional ReLU. The weight stays in
// torchvision's [out, in] layout; a weight larger than one storage binding is split into
// row chunks, one dispatch each (see kernels/linear.rs).
//
// Register blocking: each invocation computes TM = 4 batch rows x TN = 4 output features,
// so every k step loads 4 + 4 values for 16 FMAs.

#include "linear/header"
#include "kernel/workgroups"

override WG: u32 = 64u;

const TM: u32 = 4u;
const TN: u32 = 4u;

// Workgroups over (batch rows in TM tiles) x (output tiles of TN * WG rows).
fn output_tiles() -> u32 {
    return (ROWS + TN * WG - 1u) / (TN * WG);
}

fn work_groups() -> u32 {
    return output_tiles() * ((M + TM - 1u) / TM);
}

fn work_group(linear: u32, lid: u32) {
    let otiles = output_tiles();
    let m0 = (linear / otiles) * TM;
    let r0 = ((linear % otiles) * WG + lid) * TN;
    // Rows past the end read the last valid row and are never stored.
    var xr: array<u32, TM>;
    for (var i = 0u; i < TM; i++) { xr[i] = min(m0 + i, M - 1u) * K; }
    var wr: array<u32, TN>;
    for (var j = 0u; j < TN; j++) { wr[j] = min(r0 + j, ROWS - 1u) * K; }
    var acc: array<vec4<f32>, TM>;
    for (var k = 0u; k < K; k++) {
        let wv = vec4<f32>(f32(weight[wr[0] + k]), f32(weight[wr[1] + k]), f32(weight[wr[2] + k]), f32(weight[wr[3] + k]));
        for (var i = 0u; i < TM; i++) {
            acc[i] = fma(vec4<f32>(f32(x[xr[i] + k])), wv, acc[i]);
        }
    }
    for (var i = 0u; i < TM; i++) {
        if (m0 + i >= M) { break; }
        for (var j = 0u; j < TN; j++) {
            if (r0 + j >= ROWS) { break; }
            let o = ROW0 + r0 + j;
            var y = acc[i][j] + f32(bias[o]);
            if (RELU) { y = relu(y); }
            output[(m0 + i) * N_OUT + o] = S(y);
        }
    }
}
