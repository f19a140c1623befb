//! Every forward kernel against the CPU reference on fresh random inputs, with outputs
//! poisoned with NaN before each run. Shapes cover 1x1, 7x7 and 13x15 spatial sizes,
//! C_in = 3, channel counts that are no multiple of any tile, N = 1 and N = 3, and grids
//! over 65535 workgroups in a dimension where a kernel's grid can reach that.

mod common;
use common::{assert_pass, gpu, on_each_gpu, seed};
use vgg_wgpu::check;
use vgg_wgpu::gpu::Precision;
use vgg_wgpu::kernels::conv::{Conv2d, ConvShape, ConvTune, ConvVariant};
use vgg_wgpu::kernels::linear::{LinearShape, LinearVariant};

fn cs(n: usize, c_in: usize, c_out: usize, h: usize, w: usize, k: usize) -> ConvShape {
    ConvShape::new(n, c_in, c_out, h, w, k)
}

fn conv_variants() -> Vec<ConvTune> {
    ConvTune::variants_for(gpu())
}

const CONV3_SHAPES: &[(usize, usize, usize, usize, usize)] = &[
    (1, 3, 13, 13, 15), // C_in = 3, odd spatial, C_out no multiple of a tile
    (3, 16, 20, 7, 7),
    (2, 8, 5, 1, 1),
    (1, 64, 72, 28, 28),
    (3, 5, 9, 2, 3),
];

#[test]
fn conv3x3_matches_reference() {
    on_each_gpu(|| {
        for (i, &(n, ci, co, h, w)) in CONV3_SHAPES.iter().enumerate() {
            for tune in conv_variants() {
                for relu in [false, true] {
                    assert_pass(check::conv(
                        gpu(),
                        cs(n, ci, co, h, w, 3),
                        relu,
                        Some(tune),
                        seed() + i as u64,
                    ));
                }
            }
        }
    });
}

#[test]
fn conv1x1_matches_reference() {
    on_each_gpu(|| {
        for (i, &(n, ci, co, h, w)) in [(3, 5, 11, 13, 15), (1, 64, 24, 7, 7), (2, 3, 1, 1, 1)]
            .iter()
            .enumerate()
        {
            for tune in conv_variants() {
                assert_pass(check::conv(
                    gpu(),
                    cs(n, ci, co, h, w, 1),
                    true,
                    Some(tune),
                    seed() + i as u64,
                ));
            }
        }
    });
}

#[test]
fn conv_grid_over_65535_workgroups() {
    on_each_gpu(|| {
        for tune in conv_variants() {
            // 16-lane workgroups of 4 pixels each: 1024 rows of 1025 pixel groups need
            // 65600; the GEMM variant's tiles of 128 pixels need twice the rows.
            let (tune, s) = if tune.variant == ConvVariant::Gemm {
                (tune, cs(1, 1, 3, 2048, 4100, 3))
            } else {
                (ConvTune { wg: 16, ..tune }, cs(1, 1, 3, 1024, 4100, 3))
            };
            let (x, _, z) = Conv2d::with_tune(gpu(), s, false, tune)
                .unwrap()
                .grid(gpu())
                .unwrap();
            assert!(
                z > 1 && x as u64 * z as u64 > 65535,
                "grid ({x}, _, {z}) does not fold"
            );
            assert_pass(check::conv(gpu(), s, false, Some(tune), seed()));
        }
    });
}

#[test]
fn maxpool_matches_reference_with_indices() {
    on_each_gpu(|| {
        for (i, d) in [(1, 3, 13, 15), (3, 5, 7, 7), (2, 4, 2, 2), (1, 2, 3, 2)]
            .into_iter()
            .enumerate()
        {
            assert_pass(check::maxpool(gpu(), d, seed() + i as u64));
        }
    });
}

#[test]
fn maxpool_grid_over_65535_workgroups() {
    on_each_gpu(|| {
        // 3 x 128 x 112 x 112 outputs in 64-lane workgroups: 75264 workgroups.
        assert_pass(check::maxpool(gpu(), (3, 128, 224, 224), seed()));
    });
}

#[test]
fn linear_matches_reference() {
    on_each_gpu(|| {
        let shapes = [
            (1, 100, 13),
            (3, 37, 29),
            (2, 4096, 1000),
            (5, 1, 3),
            (9, 130, 6),
            (17, 33, 5),
        ];
        for (i, &(m, k, n_out)) in shapes.iter().enumerate() {
            for variant in LinearVariant::ALL {
                for relu in [false, true] {
                    assert_pass(check::linear_as(
                        gpu(),
                        LinearShape { m, k, n_out },
                        relu,
                        None,
                        Precision::F32,
                        Some(variant),
                        seed() + i as u64,
                    ));
                }
            }
        }
    });
}

#[test]
fn linear_weight_split_over_bindings() {
    on_each_gpu(|| {
        // A 10-row binding limit splits 77 rows into 8 chunks, the last one short.
        let s = LinearShape {
            m: 3,
            k: 50,
            n_out: 77,
        };
        for variant in LinearVariant::ALL {
            assert_pass(check::linear_as(
                gpu(),
                s,
                true,
                Some(50 * 4 * 10),
                Precision::F32,
                Some(variant),
                seed(),
            ));
        }
    });
}

#[test]
fn linear_grid_over_65535_workgroups() {
    on_each_gpu(|| {
        // One output feature, 600000 rows of 8 per workgroup: 75000 workgroups.
        let s = LinearShape {
            m: 600_000,
            k: 3,
            n_out: 1,
        };
        for variant in LinearVariant::ALL {
            assert_pass(check::linear_as(
                gpu(),
                s,
                false,
                None,
                Precision::F32,
                Some(variant),
                seed(),
            ));
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
        assert_pass(check::linear(gpu(), s, true, None, seed()));
        if weight_bytes > limit {
            let fc = vgg_wgpu::kernels::linear::Linear::new(gpu(), s, true).unwrap();
            assert!(fc.chunk_count() >= weight_bytes.div_ceil(limit) as usize);
        }
    });
}

#[test]
fn softmax_matches_reference() {
    on_each_gpu(|| {
        for (i, &(r, c)) in [(1, 1000), (3, 1000), (2, 7), (5, 1), (70_000, 3)]
            .iter()
            .enumerate()
        {
            assert_pass(check::softmax(gpu(), r, c, seed() + i as u64));
        }
    });
}

#[test]
fn lrn_matches_reference() {
    on_each_gpu(|| {
        for (i, d) in [(1, 3, 13, 15), (3, 7, 7, 7), (2, 64, 1, 1), (1, 2, 5, 5)]
            .into_iter()
            .enumerate()
        {
            assert_pass(check::lrn(gpu(), d, seed() + i as u64));
        }
    });
}

#[test]
fn batchnorm_matches_reference() {
    on_each_gpu(|| {
        for (i, d) in [(3, 13, 13, 15), (1, 3, 7, 7), (2, 5, 1, 1)]
            .into_iter()
            .enumerate()
        {
            for relu in [false, true] {
                assert_pass(check::batchnorm(gpu(), d, relu, seed() + i as u64));
            }
        }
    });
}

#[test]
fn batchnorm_folded_into_conv_matches_unfolded_reference() {
    on_each_gpu(|| {
        for (i, s) in [
            cs(2, 3, 13, 13, 15, 3),
            cs(3, 8, 20, 7, 7, 3),
            cs(1, 5, 6, 1, 1, 3),
        ]
        .into_iter()
        .enumerate()
        {
            assert_pass(check::batchnorm_folded(gpu(), s, seed() + i as u64));
        }
    });
}

#[test]
fn adaptive_avg_pool_matches_reference() {
    on_each_gpu(|| {
        let cases = [
            ((1, 8, 7, 7), (7, 7)),     // identity, as at 224x224 input
            ((3, 5, 13, 15), (7, 7)),   // overlapping bins
            ((2, 4, 1, 1), (7, 7)),     // replication
            ((1, 2, 224, 224), (7, 7)), // large bins
            ((1, 3, 10, 9), (3, 4)),
        ];
        for (i, (d, o)) in cases.into_iter().enumerate() {
            assert_pass(check::adaptive_pool(gpu(), d, o, seed() + i as u64));
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
        assert_pass(check::conv(
            &checked,
            cs(3, 5, 11, 13, 15, 3),
            true,
            None,
            seed(),
        ));
        assert_pass(check::maxpool(&checked, (3, 5, 13, 15), seed()));
        assert_pass(check::linear(
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

#[test]
fn im2col_matches_reference() {
    on_each_gpu(|| {
        for (i, (dims, win)) in [
            ((2, 5, 9, 11), (7, 7)),
            ((1, 3, 7, 7), (7, 7)),
            ((3, 2, 4, 5), (2, 3)),
            ((1, 16, 12, 12), (1, 1)),
        ]
        .into_iter()
        .enumerate()
        {
            assert_pass(check::im2col(gpu(), dims, win, seed() + i as u64));
        }
    });
}

#[test]
fn peak_kernels_compute_what_they_claim() {
    on_each_gpu(|| {
        use vgg_wgpu::kernels::peak::{PeakCopy, PeakFma};
        let g = gpu();
        // 1000 invocations: not a multiple of the workgroup, so the tail is exercised.
        let fma = PeakFma::new(g, 1000, 37).unwrap();
        let out = g.alloc("out", (fma.output_len() * 4) as u64).unwrap();
        g.poison(&out);
        let bg = fma.bind(g, &out).unwrap();
        g.run_pass("peak_fma", |p| fma.encode(g, p, &bg)).unwrap();
        let got: Vec<f32> = g.read(&out, fma.output_len()).unwrap();
        let want: Vec<f32> = (0..1000)
            .flat_map(|i| vgg_wgpu::reference::peak::fma(i, 37))
            .collect();
        let d = check::compare(&got, &want);
        eprintln!("[{}] peak_fma: {d}", g.info().name);
        assert!(d.passes(check::F32_KERNEL_TOL), "{d}");

        let len = 4 * 1001;
        let copy = PeakCopy::new(g, len).unwrap();
        let x = check::TensorRng::new(seed()).uniform(len);
        let xb = g.upload("x", &x).unwrap();
        let y = g.alloc("y", (len * 4) as u64).unwrap();
        g.poison(&y);
        let bg = copy.bind(g, &xb, &y).unwrap();
        g.run_pass("peak_copy", |p| copy.encode(g, p, &bg)).unwrap();
        assert_eq!(g.read::<f32>(&y, len).unwrap(), x);
    });
}
