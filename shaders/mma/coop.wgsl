// The matrix operations of the coop_body kernels (conv and linear) on cooperative
// matrices: 16x16 tiles of f16 operands accumulated in f32, the configuration the
// adapter lists as "16x16x16 f16->f32" (gpu::COOP_SHAPE; any other is undefined behaviour). Every lane of a subgroup
// makes each call together. Loads and stores are row-major (the T forms), from and to
// the workgroup tiles of the body.

enable f16;
enable wgpu_cooperative_matrix;

alias MA = coop_mat16x16<f16, A>;
alias MB = coop_mat16x16<f16, B>;
alias MC = coop_mat16x16<f32, C>;

fn mma_lane(sid: u32, size: u32) {}

fn mma_zero() -> MC {
    return MC();
}

// The 16x16 tile of sa (BK columns) starting at `off`.
fn mma_load_a(off: u32) -> MA {
    return coopLoadT<MA>(&sa[off], BK);
}

// The 16x16 tile of sb (BN columns) starting at `off`.
fn mma_load_b(off: u32) -> MB {
    return coopLoadT<MB>(&sb[off], BN);
}

fn mma(a: MA, b: MB, c: MC) -> MC {
    return coopMultiplyAdd(a, b, c);
}

// Stores the tile into sc (BN columns) at `off`.
fn mma_store(c: MC, off: u32) {
    coopStoreT(c, &sc[off], BN);
}
