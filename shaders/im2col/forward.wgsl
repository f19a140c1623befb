// Gathers every kh x kw window of an NCHW map (stride 1, no padding) into a row, so a fully
// connected layer can run as a convolution over all positions at once (the paper's dense
// evaluation: fc6 as a 7x7 convolution over pool5). Output [N][OH * OW][C][KH][KW], the
// flatten order of a window, so the FC weight applies unchanged. One invocation per output.

#include "kernel/nchw"

override KH: u32;
override KW: u32;
#include "kernel/elements"

@group(0) @binding(0) var<storage, read> input: array<S>;
@group(0) @binding(1) var<storage, read_write> output: array<S>;

fn elements() -> u32 { return N * (H - KH + 1u) * (W - KW + 1u) * C * KH * KW; }

fn element(i: u32) {
    let oh = H - KH + 1u;
    let ow = W - KW + 1u;
    let row_len = C * KH * KW;
    let col = i % row_len;
    let row = i / row_len;
    let kx = col % KW;
    let ky = (col / KW) % KH;
    let c = col / (KW * KH);
    let ox = row % ow;
    let oy = (row / ow) % oh;
    let n = row / (ow * oh);
    output[i] = input[((n * C + c) * H + oy + ky) * W + ox + kx];
}
