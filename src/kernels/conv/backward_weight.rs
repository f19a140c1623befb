//! Conv weight gradient, canonical layout, as a split-K implicit GEMM
//! (shaders/conv/backward_weight/gemm.wgsl, then reduce.wgsl beside it where the pixels are
//! split in more than one chunk), or per channel pair where the batch has few pixels
//! (pairs.wgsl), or on tensor cores (coop.wgsl).

use super::ConvShape;
use crate::error::Result;
use crate::gpu::Gpu;
use crate::kernels::{per_elem, shader, Kernel, WG};

/// Lanes per workgroup of the GEMM pass that the chunks are sized for, and the channel
/// block (output x input channels).
const LANES: usize = 32;
const BLOCK: (usize, usize) = (4, 4);
/// Output rows per work item (the shader's ROWS): a lane walks down a column of 4 pixels,
/// keeping the input rows it has loaded.
const ROWS: usize = 8;

/// Lanes per workgroup on `gpu`: 32 (a warp) on GPUs; 8 (one SIMD subgroup) on CPU
/// drivers, where workgroup memory is a per-lane loop and the end-of-chunk reduction's
/// cost grows with the lanes.
fn lanes(gpu: &Gpu) -> usize {
    if gpu.is_cpu() {
        8
    } else {
        LANES
    }
}

/// Work items of `s`: columns of 4 pixels over up to ROWS rows, per image.
fn items(s: ConvShape) -> usize {
    s.n * s.h.div_ceil(ROWS) * s.w.div_ceil(4)
}
/// Work items a chunk aims at: 2 per lane (16 output rows). Fewer chunks cost parallelism
/// on a GPU for the early layers; more cost partial sums to write and add.
const ITEMS_PER_CHUNK: usize = LANES * 2;
/// The most elements of partial sums a split may take (16 MiB of f32).
const MAX_PARTIAL: usize = 1 << 22;

/// The most elements of partial sums a split with one span per image may take for the
/// whole batch (32 MiB of f32: every VGG's early layers up to batch 56).
const MAX_PARTIAL_PER_IMAGE: usize = 1 << 23;

/// How the weight gradient of `s` splits its pixels into chunks of partial sums.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Split {
    pub chunks: usize,
    /// Work items per span: the chunks cover spans of this many items, `per_span` chunks to
    /// a span.
    pub span: usize,
    pub per_span: usize,
}

/// How the weight gradient of `s`, a group of `s.n` images of a batch of `batch`, splits its
/// pixels. Where the whole batch's partial sums fit `MAX_PARTIAL_PER_IMAGE`, each image
/// is a span of its own and its chunk count is decided by the batch, so the chunks of a
/// group are exactly those of its images in the whole batch: a trainer that runs a batch in
/// groups (under the binding limit) adds the same partial sums in the same order. Elsewhere
/// one span covers every item. A function of the shapes alone, so buffers can be sized
/// without an adapter.
pub fn split(s: ConvShape, batch: usize) -> Split {
    let wl = s.weight_len().max(1);
    let per_image = s.h.div_ceil(ROWS) * s.w.div_ceil(4);
    let batch = batch.max(s.n);
    if batch * wl <= MAX_PARTIAL_PER_IMAGE {
        let cpi = per_image
            .div_ceil(ITEMS_PER_CHUNK)
            .clamp(1, MAX_PARTIAL_PER_IMAGE / (batch * wl));
        return Split {
            chunks: s.n * cpi,
            span: per_image,
            per_span: cpi,
        };
    }
    let cap = (MAX_PARTIAL / wl).max(1);
    let chunks = items(s).div_ceil(ITEMS_PER_CHUNK).clamp(1, cap);
    Split {
        chunks,
        span: items(s),
        per_span: chunks,
    }
}

/// Whether the weight gradient of `s` in a batch of `batch` runs one invocation per channel
/// pair (few pixels in the whole batch), which sums image by image.
fn pairs(s: ConvShape, batch: usize) -> bool {
    batch.max(s.n) * s.h * s.w.div_ceil(4) < MIN_GEMM_GROUPS
}

/// Elements of the partial-sum buffer the weight gradient of `s` (a group of `s.n` images
/// of a batch of `batch`) needs: 0 with one chunk.
pub fn partial_len(s: ConvShape, batch: usize) -> usize {
    if pairs(s, batch) {
        return 0;
    }
    match split(s, batch).chunks {
        1 => 0,
        chunks => chunks * s.weight_len(),
    }
}

/// The weight gradient's kernels: `main` binds (x, dy, out) with out the partial sums
/// where `reduce` exists (it binds (partials, dw)) and dw otherwise.
pub struct Wgrad {
    pub main: Kernel,
    pub reduce: Option<Kernel>,
}

/// Below this many groups of 4 pixels in the batch, the weight gradient runs one
/// invocation per channel pair over every pixel (backward_weight/pairs.wgsl) instead of the GEMM:
/// with a handful of pixel groups per lane, the GEMM's end-of-chunk reduction costs more
/// than its loop saves (lavapipe, batch 1: 512 -> 512 channels at 4x4, 4 groups, 4.5 ms
/// against 35; 256 -> 256 at 8x8, 16 groups, 14.8 against 12.4).
const MIN_GEMM_GROUPS: usize = 16;

/// Conv weight gradient of `s`, canonical [c_out, c_in, k, k], for a group of `s.n` images
/// of a batch of `batch` (`s.n` for the whole batch at once); `accumulate` adds to dw, as a
/// later group or micro-batch does.
pub fn wgrad(gpu: &Gpu, s: ConvShape, accumulate: bool, batch: usize) -> Result<Wgrad> {
    s.check_kernel_size()?;
    let bindings = vec![
        ("x", s.input_len()),
        ("dy", s.output_len()),
        ("dw", s.weight_len()),
    ];
    // Few work items fill the GPU better one per channel pair; and the driver may be one
    // that cannot build conv/backward_weight/gemm (`gpu::DRIVER_ISSUES`; the partial sums
    // sized by `partial_len` then go unused).
    if pairs(s, batch) || gpu.driver_issue("conv/backward_weight/gemm").is_some() {
        let mut consts = s.consts();
        consts.extend(consts![ACCUMULATE = accumulate, WG = WG]);
        let main = Kernel::new(
            gpu,
            shader!("conv/backward_weight/pairs"),
            "main",
            &consts,
            per_elem(s.c_out * s.c_in),
            bindings,
        )?;
        return Ok(Wgrad { main, reduce: None });
    }
    let Split {
        chunks,
        span,
        per_span,
    } = split(s, batch);
    let lanes = lanes(gpu);
    // Each lane takes a chunk of its own (`lanes` in the shader) where the chunks fill a
    // workgroup and, on a GPU, a chunk has fewer items than lanes (which would idle and
    // still pay the workgroup's reduction: at 4x4 maps a chunk per image has one item). On
    // a CPU driver it gains wherever the chunks fill a workgroup, as its lanes' reduction
    // is a loop (lavapipe, batch 32, 128 -> 128 channels at 4x4: 292 ms -> 46; 16 -> 32
    // at 16x16: 20 -> 13; batch 8, 256 -> 256 at 28x28 in 8 chunks: 1542 -> 1289); with
    // one chunk over the batch it loses (512 -> 512 at 14x14: 1592 -> 2959).
    // Decided on the whole batch's chunks, so a group of images sums its chunks the way the
    // whole batch does.
    let per_chunk = span.div_ceil(per_span);
    let whole = split(
        ConvShape {
            n: batch.max(s.n),
            ..s
        },
        batch,
    )
    .chunks;
    let by_lane = whole >= lanes && (gpu.is_cpu() || per_chunk < lanes);
    let per = if by_lane {
        per_chunk
    } else {
        span.div_ceil(lanes * per_span)
    };
    let mut consts = s.consts();
    consts.extend(consts![
        WG = lanes,
        CHUNKS = chunks,
        PER = per,
        SPAN = span,
        CPI = per_span,
        ACCUMULATE = accumulate,
    ]);
    let blocks = s.c_out.div_ceil(BLOCK.0) * s.c_in.div_ceil(BLOCK.1);
    let shader = shader!("conv/backward_weight/gemm");
    let (entry, groups) = if by_lane {
        ("lanes", chunks.div_ceil(lanes) * blocks)
    } else {
        ("main", chunks * blocks)
    };
    split_passes(gpu, s, (shader, entry), &consts, groups, chunks, accumulate)
}

/// The two passes of a weight gradient split in `chunks`: `shader`'s entry point over (x,
/// dy, out) in `groups` workgroups, out the chunks' partial sums (dw itself for one
/// chunk), then `reduce` adding them in order.
fn split_passes(
    gpu: &Gpu,
    s: ConvShape,
    (shader, entry): (crate::gpu::Shader, &'static str),
    consts: &[(&str, f64)],
    groups: usize,
    chunks: usize,
    accumulate: bool,
) -> Result<Wgrad> {
    let main = Kernel::new(
        gpu,
        shader,
        entry,
        consts,
        groups as u64,
        vec![
            ("x", s.input_len()),
            ("dy", s.output_len()),
            ("out", chunks.max(1) * s.weight_len()),
        ],
    )?;
    let reduce = reduce(gpu, s, chunks, accumulate)?;
    Ok(Wgrad { main, reduce })
}

/// The second pass where the pixels are split in `chunks` (none for one): dw (+)= the sum
/// of the chunks' partial gradients.
fn reduce(gpu: &Gpu, s: ConvShape, chunks: usize, accumulate: bool) -> Result<Option<Kernel>> {
    if chunks < 2 {
        return Ok(None);
    }
    Ok(Some(Kernel::new(
        gpu,
        shader!("conv/backward_weight/reduce"),
        "main",
        &consts![
            LEN = s.weight_len(),
            CHUNKS = chunks,
            ACCUMULATE = accumulate,
            WG = WG,
        ],
        per_elem(s.weight_len()),
        vec![("partial", chunks * s.weight_len()), ("dw", s.weight_len())],
    )?))
}

impl Wgrad {
    /// Bind groups over (x, dy, dw), with `partials` (at least [`partial_len`] elements)
    /// between the passes where the pixels are split.
    pub fn bind(
        &self,
        gpu: &Gpu,
        x: &wgpu::Buffer,
        dy: &wgpu::Buffer,
        partials: &wgpu::Buffer,
        dw: &wgpu::Buffer,
    ) -> Result<Vec<wgpu::BindGroup>> {
        match &self.reduce {
            Some(r) => Ok(vec![
                self.main.bind(gpu, &[x, dy, partials])?,
                r.bind(gpu, &[partials, dw])?,
            ]),
            None => Ok(vec![self.main.bind(gpu, &[x, dy, dw])?]),
        }
    }

    /// Both passes, in order, on the bind groups of [`Wgrad::bind`].
    pub fn encode(
        &self,
        gpu: &Gpu,
        pass: &mut wgpu::ComputePass<'_>,
        bgs: &[wgpu::BindGroup],
    ) -> Result<()> {
        self.main.encode(gpu, pass, &bgs[0])?;
        if let (Some(r), Some(bg)) = (&self.reduce, bgs.get(1)) {
            r.encode(gpu, pass, bg)?;
        }
        Ok(())
    }
}

/// Pixels per step of the cooperative-matrix weight gradient (a matrix tile's depth).
const COOP_BK: usize = 16;
/// Workgroups the cooperative-matrix split aims at: a few per multiprocessor of a large GPU
/// (an H200 has 132), so the early layers' 9 or 18 blocks of dw still fill it.
const COOP_GROUPS: usize = 1024;
/// The fewest steps a chunk takes: with fewer, its partial sums cost more to write and add
/// than the split gains.
const COOP_MIN_STEPS: usize = 16;

/// How the cooperative-matrix weight gradient of `s` splits the batch's pixels: (chunks,
/// pixels per chunk, a multiple of 16). A function of the shape alone, as [`split`].
pub fn coop_split(s: ConvShape) -> (usize, usize) {
    let pixels = s.n * s.h * s.w;
    let blocks = s.c_out.div_ceil(64) * (s.c_in * s.k * s.k).div_ceil(64);
    let steps = pixels.div_ceil(COOP_BK);
    let cap = (MAX_PARTIAL / s.weight_len().max(1)).max(1);
    let chunks = COOP_GROUPS
        .div_ceil(blocks)
        .min(steps / COOP_MIN_STEPS)
        .min(cap)
        .max(1);
    let per = steps.div_ceil(chunks) * COOP_BK;
    (pixels.div_ceil(per), per)
}

/// Elements of the partial-sum buffer the cooperative-matrix weight gradient of `s` needs
/// (0 with one chunk).
pub fn coop_partial_len(s: ConvShape) -> usize {
    match coop_split(s) {
        (1, _) => 0,
        (chunks, _) => chunks * s.weight_len(),
    }
}

/// The weight gradient that goes with a forward variant: on 16x16x16 matrix tiles (f16
/// operands, f32 sums; shaders/conv/backward_weight/coop_body.wgsl) after the
/// cooperative-matrix forward (`CoopEmulated`'s lane-by-lane emulation after
/// `CoopEmulated`), the f32 kernels after any other.
pub fn wgrad_for(
    gpu: &Gpu,
    s: ConvShape,
    accumulate: bool,
    forward: super::ConvVariant,
    batch: usize,
) -> Result<Wgrad> {
    use super::ConvVariant;
    let shader = match forward {
        ConvVariant::Coop => shader!("conv/backward_weight/coop"),
        ConvVariant::CoopEmulated => shader!("conv/backward_weight/coop_emulated"),
        _ => return wgrad(gpu, s, accumulate, batch),
    };
    if batch != s.n {
        // Its chunks run over the batch's pixels, not image by image.
        return Err(crate::error::Error::Limit(format!(
            "the {forward:?} weight gradient runs on a whole batch, not in groups of \
             images ({} of {batch}); train with a batch whose activations fit one binding",
            s.n
        )));
    }
    s.check_kernel_size()?;
    if let Some(why) = forward.spec().missing(gpu) {
        return Err(crate::error::Error::Limit(why));
    }
    let (chunks, per) = coop_split(s);
    let mut consts = s.consts();
    consts.extend(consts![
        CHUNKS = chunks,
        QC = per,
        ACCUMULATE = accumulate,
        WG = 4 * gpu.fixed_subgroup().unwrap_or(32),
    ]);
    let blocks = s.c_out.div_ceil(64) * (s.c_in * s.k * s.k).div_ceil(64);
    let groups = chunks * blocks;
    split_passes(
        gpu,
        s,
        (shader, "main"),
        &consts,
        groups,
        chunks,
        accumulate,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_group_of_images_splits_into_its_images_chunks_of_the_whole_batch() {
        // VGG16's first layers at batch 32 split per image, and a group of 8 of those
        // images into exactly their chunks; a layer whose batch partial sums would pass the
        // cap keeps one span over every item.
        for (s, per_image) in [
            (ConvShape::new(32, 64, 64, 224, 224, 3), true),
            (ConvShape::new(32, 128, 128, 112, 112, 3), true),
            (ConvShape::new(32, 512, 512, 14, 14, 3), false),
        ] {
            let whole = split(s, s.n);
            let group = split(ConvShape { n: 8, ..s }, s.n);
            let span = s.h.div_ceil(ROWS) * s.w.div_ceil(4);
            assert_eq!(whole.span == span, per_image, "{s:?}");
            if per_image {
                assert_eq!(group.per_span, whole.per_span);
                assert_eq!(group.chunks * 4, whole.chunks);
                assert!(whole.chunks * s.weight_len() <= MAX_PARTIAL_PER_IMAGE);
            } else {
                assert_eq!(whole.span, items(s));
            }
        }
    }

    #[test]
    fn the_coop_split_covers_every_pixel_once_in_whole_steps() {
        for s in [
            ConvShape::new(2, 66, 70, 16, 17, 3),
            ConvShape::new(32, 64, 64, 224, 224, 3),
            ConvShape::new(32, 512, 512, 14, 14, 3),
            ConvShape::new(1, 3, 4, 1, 1, 3),
            ConvShape::new(3, 8, 8, 33, 50, 1),
        ] {
            let (chunks, per) = coop_split(s);
            let pixels = s.n * s.h * s.w;
            assert!(per % COOP_BK == 0 && per > 0, "{s:?}");
            assert!(
                chunks * per >= pixels && (chunks - 1) * per < pixels,
                "{s:?}"
            );
            assert!(
                coop_partial_len(s) <= MAX_PARTIAL.max(s.weight_len()),
                "{s:?}"
            );
        }
        // VGG16's conv1_2 at batch 32: 9 blocks of dw, so 1024 / 9 chunks, capped at 16 MiB
        // of partial sums (113 copies of its 36864 weights); conv5: 576 blocks, one chunk.
        assert_eq!(coop_split(ConvShape::new(32, 64, 64, 224, 224, 3)).0, 113);
        assert_eq!(coop_split(ConvShape::new(32, 512, 512, 14, 14, 3)).0, 1);
    }
}
