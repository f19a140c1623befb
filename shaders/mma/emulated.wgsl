// mma/coop's operations lane by lane, for adapters without cooperative matrices:
// the same body then runs on CI's CPU drivers, so its staging, tiling and epilogue are
// tested against the reference there, and only the four cooperative-matrix calls are
// left to the GPU. Lane l of a subgroup of s lanes owns elements l, l + s, ... of each
// 16x16 accumulator (s >= 8). An A or B "tile" is its offset into the staged workgroup
// memory, read when multiplied (between the same barriers as the real loads). The
// products of f16 operands are exact in f32, as on tensor cores; the sums run in k order.

enable f16;

struct MA {
    off: u32,
}

struct MB {
    off: u32,
}

struct MC {
    v: array<f32, 32>,
}

var<private> e_lane: u32;
var<private> e_size: u32;

fn mma_lane(sid: u32, size: u32) {
    e_lane = sid;
    e_size = size;
}

fn mma_zero() -> MC {
    return MC(array<f32, 32>());
}

fn mma_load_a(off: u32) -> MA {
    return MA(off);
}

fn mma_load_b(off: u32) -> MB {
    return MB(off);
}

fn mma(a: MA, b: MB, c: MC) -> MC {
    var r = c;
    for (var t = 0u; t * e_size < 256u; t++) {
        let e = e_lane + t * e_size;
        let row = e / 16u;
        let col = e % 16u;
        var s = r.v[t];
        for (var k = 0u; k < 16u; k++) {
            s = fma(f32(sa[a.off + row * BK + k]), f32(sb[b.off + k * BN + col]), s);
        }
        r.v[t] = s;
    }
    return r;
}

fn mma_store(c: MC, off: u32) {
    for (var t = 0u; t * e_size < 256u; t++) {
        let e = e_lane + t * e_size;
        sc[off + (e / 16u) * BN + e % 16u] = c.v[t];
    }
}
