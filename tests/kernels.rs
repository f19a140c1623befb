//! What the conformance table (tests/ops.rs) does not say by itself: that the grid cases
//! really pass 65535 workgroups, VGG16's full-size fc6 split over bindings, the kernels
//! with naga's bounds checks on, a clear error for a variant the adapter cannot run, and
//! the peak kernels the benchmark divides by.

mod common;
use common::{assert_pass, gpu, on_each_gpu, seed};
use vgg_wgpu::check;
use vgg_wgpu::kernels::conv::{Conv2d, ConvShape, ConvTune};
use vgg_wgpu::kernels::linear::LinearShape;

fn cs(n: usize, c_in: usize, c_out: usize, h: usize, w: usize, k: usize) -> ConvShape {
    ConvShape::new(n, c_in, c_out, h, w, k)
}

fn conv_variants() -> Vec<ConvTune> {
    ConvTune::variants_for(gpu())
}

/// The table's conv grid cases (`grid_case` in check/conv.rs) fold their grid.
#[test]
fn conv_grid_over_65535_workgroups() {
    on_each_gpu(|| {
        for tune in conv_variants() {
            let (tune, s) = vgg_wgpu::check::conv::grid_case(tune);
            let (x, _, z) = Conv2d::with_tune(gpu(), s, false, tune)
                .unwrap()
                .grid(gpu())
                .unwrap();
            assert!(
                z > 1 && x as u64 * z as u64 > 65535,
                "grid ({x}, _, {z}) does not fold"
            );
        }
    });
}

#[test]
fn linear_vgg16_fc1_weight_over_binding_limit() {
    on_each_gpu(|| {
        // VGG16's first classifier layer: a 25088 x 4096 f32 weight, 392 MiB.
        let s = LinearShape {
            m: 2,
            k: 25088,
            n_out: 4096,
        };
        let weight_bytes = (s.k * s.n_out * 4) as u64;
        let limit = gpu().max_binding_bytes();
        eprintln!("weight {weight_bytes} bytes, binding limit {limit}");
        assert_pass(check::linear::forward(gpu(), s, true, None, seed()));
        if weight_bytes > limit {
            let fc = vgg_wgpu::kernels::linear::Linear::new(gpu(), s, true).unwrap();
            assert!(fc.chunk_count() >= weight_bytes.div_ceil(limit) as usize);
        }
    });
}

#[test]
fn kernels_agree_with_bounds_checks_on() {
    on_each_gpu(|| {
        // The default build drops naga's runtime bounds checks (host-side size checks cover
        // them); the checked build must compute the same thing.
        let opts = vgg_wgpu::GpuOptions {
            bounds_checks: true,
            ..Default::default()
        };
        let checked = vgg_wgpu::Gpu::open(gpu().adapter().clone(), &opts).unwrap();
        assert!(checked.bounds_checks());
        assert_pass(check::conv::forward(
            &checked,
            cs(3, 5, 11, 13, 15, 3),
            true,
            None,
            seed(),
        ));
        assert_pass(check::pool::forward(
            &checked,
            (3, 5, 13, 15),
            false,
            seed(),
        ));
        assert_pass(check::linear::forward(
            &checked,
            LinearShape {
                m: 3,
                k: 37,
                n_out: 29,
            },
            true,
            None,
            seed(),
        ));
    });
}

#[test]
fn subgroup_conv_without_subgroups_is_a_clear_error() {
    let opts = vgg_wgpu::GpuOptions {
        backend: Some("gl".into()),
        ..Default::default()
    };
    let Ok(gl) = vgg_wgpu::Gpu::new(&opts) else {
        eprintln!("no OpenGL adapter here; skipped");
        return;
    };
    if gl.subgroups_of_at_least(8) {
        return;
    }
    let tune = ConvTune {
        variant: vgg_wgpu::kernels::conv::ConvVariant::Subgroup,
        wg: 16,
        tm: 8,
    };
    let err = Conv2d::with_tune(&gl, cs(1, 3, 8, 5, 5, 3), false, tune)
        .err()
        .map(|e| e.to_string());
    assert!(err.is_some_and(|e| e.contains("needs subgroups")));
}

/// Without cooperative matrices (every CI adapter) the tensor-core conv variant is a clear
/// error when asked for, f16 selects the adapter's usual variants, and no precision ever
/// selects the emulated ones; with them, f16 selects them for 1x1 and 3x3 convs and for FC
/// layers at batch 16 and more, and f32 never does.
#[test]
fn tensor_core_selection_falls_back_without_cooperative_matrices() {
    use vgg_wgpu::gpu::Precision;
    use vgg_wgpu::kernels::conv::{select, ConvVariant};
    on_each_gpu(|| {
        let g = gpu();
        for k in [1, 3] {
            let s = cs(2, 64, 64, 28, 28, k);
            let f16 = select(g, s, None, Precision::F16).variant;
            let f32 = select(g, s, None, Precision::F32).variant;
            assert!(!f32.f16_operands(), "{f32:?} for f32");
            assert_ne!(f16, ConvVariant::CoopEmulated);
            assert_eq!(
                f16 == ConvVariant::Coop,
                g.cooperative_matrix(),
                "{f16:?} for f16"
            );
        }
        use vgg_wgpu::kernels::linear::{select as fc_select, LinearShape, LinearVariant};
        for m in [1, 32] {
            let s = LinearShape {
                m,
                k: 512,
                n_out: 100,
            };
            let f16 = fc_select(g, s, None, Precision::F16);
            assert!(!fc_select(g, s, None, Precision::F32).f16_operands());
            assert_ne!(f16, LinearVariant::CoopEmulated);
            let want = m >= 16 && g.cooperative_matrix();
            assert_eq!(
                f16 == LinearVariant::Coop,
                want,
                "{f16:?} for f16 at batch {m}"
            );
        }
        if !g.cooperative_matrix() {
            let tune = ConvTune {
                variant: ConvVariant::Coop,
                wg: 128,
                tm: 64,
            };
            let err = Conv2d::with_tune(g, cs(1, 3, 8, 5, 5, 3), false, tune)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(err.contains("cooperative matrices"), "{err}");
        }
    });
}

#[test]
fn peak_kernels_compute_what_they_claim() {
    on_each_gpu(|| {
        use vgg_wgpu::kernels::peak;
        let g = gpu();
        // 1000 invocations: not a multiple of the workgroup, so the tail is exercised.
        let fma = peak::fma(g, 1000, 37).unwrap();
        let out = g.alloc("out", 4000 * 4).unwrap();
        g.poison(&out);
        let bg = fma.bind(g, &[&out]).unwrap();
        g.run_pass("peak_fma", |p| fma.encode(g, p, &bg)).unwrap();
        let got: Vec<f32> = g.read(&out, 4000).unwrap();
        let want: Vec<f32> = (0..1000)
            .flat_map(|i| vgg_wgpu::reference::peak::fma(i, 37))
            .collect();
        let d = check::compare(&got, &want);
        eprintln!("[{}] peak_fma: {d}", g.info().name);
        assert!(d.passes(check::F32_KERNEL_TOL), "{d}");

        let len = 4 * 1001;
        let copy = peak::copy(g, len).unwrap();
        let x = check::TensorRng::new(seed()).uniform(len);
        let xb = g.upload("x", &x).unwrap();
        // One vec4 more than the copy: what lies past LEN stays poisoned.
        let y = g.alloc("y", ((len + 4) * 4) as u64).unwrap();
        g.poison(&y);
        let bg = copy.bind(g, &[&xb, &y]).unwrap();
        g.run_pass("peak_copy", |p| copy.encode(g, p, &bg)).unwrap();
        let got = g.read::<f32>(&y, len + 4).unwrap();
        assert!(got[len..]
            .iter()
            .all(|v| v.to_bits() == vgg_wgpu::gpu::POISON_BITS));
        let y = g.read::<f32>(&y, len).unwrap();
        assert_eq!(y, x);
    });
}
