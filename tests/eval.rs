//! The paper's evaluation (`vgg_wgpu::eval`) on the GPU against the same averaging done
//! here on the CPU reference: crop positions, mirrors, softmax posteriors averaged over
//! crops, dense score maps pooled over positions and averaged with the mirror image, then
//! over scales, and the top-1 / top-k errors of every row.

mod common;
use common::{gpu, on_each_gpu, seed};
use vgg_wgpu::check::TensorRng;
use vgg_wgpu::eval::{evaluate, Method, Options, Report, View};
use vgg_wgpu::io::datasets::Dataset;
use vgg_wgpu::io::scale::rescale_crop;
use vgg_wgpu::reference::network;
use vgg_wgpu::{Init, Model, Network, Tensor, Weights};

/// 8x8 input, two pools to a 2x2 map, a 2x2 average pool: dense evaluation at scale q
/// sees a (q/4 - 1)^2 grid of positions.
fn model() -> Model {
    Model::parse("6,M,8,M")
        .and_then(|m| m.with_input(3, 8, 8))
        .and_then(|m| m.with_avgpool(Some((2, 2))))
        .and_then(|m| m.with_hidden(&[10]))
        .and_then(|m| m.with_classes(4))
        .unwrap_or_else(|e| panic!("{e}"))
}

fn softmax(z: &[f32]) -> Vec<f64> {
    let max = z.iter().cloned().fold(f32::NEG_INFINITY, f32::max) as f64;
    let e: Vec<f64> = z.iter().map(|v| (*v as f64 - max).exp()).collect();
    let s: f64 = e.iter().sum();
    e.iter().map(|v| v / s).collect()
}

/// Rows y0.., columns x0.. of a [c, s, s] image, `n` square, mirrored when asked.
fn cut(
    img: &[f32],
    c: usize,
    s: usize,
    (y0, x0): (usize, usize),
    n: usize,
    mirror: bool,
) -> Vec<f32> {
    let mut out = Vec::new();
    for k in 0..c {
        for y in y0..y0 + n {
            for x in 0..n {
                let xx = if mirror { x0 + n - 1 - x } else { x0 + x };
                out.push(img[(k * s + y) * s + xx]);
            }
        }
    }
    out
}

/// The CPU's posterior of one image at scale q for a view.
fn expected(m: &Model, w: &Weights, img: &[f32], stored: usize, q: usize, view: View) -> Vec<f64> {
    let whole = rescale_crop(img, (3, stored, stored), (q, q), (0, 0, q, q));
    let logits = |views: Vec<Vec<f32>>| -> Vec<Vec<f64>> {
        let n = views.len();
        let x = Tensor::new(vec![n, 3, 8, 8], views.concat()).unwrap();
        let out = network::forward(m, w, &x, None).unwrap();
        out.data.chunks(4).map(softmax).collect()
    };
    let mean = |ps: Vec<Vec<f64>>| -> Vec<f64> {
        let n = ps.len() as f64;
        (0..4)
            .map(|k| ps.iter().map(|p| p[k]).sum::<f64>() / n)
            .collect()
    };
    match view {
        View::Center => {
            let o = (q - 8) / 2;
            mean(logits(vec![cut(&whole, 3, q, (o, o), 8, false)]))
        }
        View::Crops => {
            // The 3x3 grid edge to edge, written out: the offsets round(i * (q - 8) / 2).
            let offsets: &[usize] = match q {
                8 => &[0, 0, 0],
                10 => &[0, 1, 2],
                13 => &[0, 3, 5],
                18 => &[0, 5, 10],
                _ => panic!("no offsets written for {q}"),
            };
            let mut views = Vec::new();
            for &y in offsets {
                for &x in offsets {
                    views.push(cut(&whole, 3, q, (y, x), 8, false));
                    views.push(cut(&whole, 3, q, (y, x), 8, true));
                }
            }
            mean(logits(views))
        }
        View::Dense => {
            let both = [whole.clone(), cut(&whole, 3, q, (0, 0), q, true)].concat();
            let mq = m.with_input(3, q, q).unwrap();
            let s = network::forward_dense(&mq, w, &Tensor::new(vec![2, 3, q, q], both).unwrap())
                .unwrap();
            let positions = s.shape[1];
            let per_view: Vec<Vec<f64>> = s
                .data
                .chunks(positions * 4)
                .map(|v| {
                    let pooled: Vec<f32> = (0..4)
                        .map(|k| {
                            (0..positions).map(|p| v[p * 4 + k] as f64).sum::<f64>() as f32
                                / positions as f32
                        })
                        .collect();
                    softmax(&pooled)
                })
                .collect();
            mean(per_view)
        }
    }
}

/// The stored side of the test images.
const STORED: usize = 18;

/// The model's weights with the FC weights scaled up, so the posteriors move from 0.25 by
/// 1e-2 (far past the tolerance below) on random images; and 5 random images of STORED
/// pixels with labels.
fn fixture(m: &Model, s: u64) -> (Weights, Dataset) {
    let mut w = Weights::init(m, Init::Kaiming, s);
    let n = 5;
    let mut rng = TensorRng::new(s ^ 0xe7a1);
    let data = Dataset {
        images: rng.uniform(n * 3 * STORED * STORED),
        labels: (0..n).map(|i| ((i * 7 + s as usize) % 4) as u32).collect(),
        dims: (3, STORED, STORED),
        classes: 4,
    };
    let fc: Vec<String> = w
        .iter()
        .map(|(k, _)| k.clone())
        .filter(|k| k.starts_with("classifier") && k.ends_with("weight"))
        .collect();
    assert_eq!(fc.len(), 2);
    for name in &fc {
        if let Some(t) = w.get_mut(name) {
            t.data.iter_mut().for_each(|v| *v *= 10.0);
        }
    }
    (w, data)
}

/// The options of the tests: dense sees 1, 4 and 9 positions at these scales; 7 views per
/// forward (one image's 18 crops each, dense in chunks of 3 and 2).
fn options() -> Options {
    Options {
        scales: vec![10, 13, 18],
        single: 13,
        grid: 3,
        batch: 7,
        methods: Method::ALL.to_vec(),
    }
}

/// Each row recomputed from the posteriors: the views' and scales' mean, then the rank
/// of the true class.
fn check_rows(r: &Report, data: &Dataset) {
    let n = data.len();
    assert_eq!(r.rows.len(), 8);
    let posteriors = &r.posteriors;
    for row in &r.rows {
        let (mut top1, mut topk) = (0, 0);
        for i in 0..n {
            let parts: Vec<&Vec<f32>> = row
                .method
                .views()
                .iter()
                .flat_map(|v| row.scales.iter().map(move |q| &posteriors[&(*v, *q)]))
                .collect();
            let p: Vec<f64> = (0..4)
                .map(|k| {
                    parts.iter().map(|x| x[i * 4 + k] as f64).sum::<f64>() / parts.len() as f64
                })
                .collect();
            let l = data.labels[i] as usize;
            let above = (0..4)
                .filter(|&k| p[k] > p[l] || (p[k] == p[l] && k < l))
                .count();
            top1 += (above > 0) as usize;
            topk += (above >= r.top_k) as usize;
        }
        assert_eq!(row.top1_error, top1 as f64 / n as f64, "{row:?}");
        assert_eq!(row.top5_error, topk as f64 / n as f64, "{row:?}");
    }
    assert_eq!(r.top_k, 4);
    assert!(
        r.rows.iter().all(|row| row.top5_error == 0.0),
        "top-4 of 4 classes"
    );
}

#[test]
fn every_method_matches_the_cpu_averaging() {
    on_each_gpu(|| {
        let m = model();
        let (w, data) = fixture(&m, seed());
        let (stored, n) = (STORED, data.len());
        let o = options();
        let mut net = Network::new(gpu(), &m, &w).unwrap();
        let r = evaluate(&mut net, &data, &o, |_, _, _| {}).unwrap();
        // Posteriors within 1e-6: each is a softmax of f32 logits a few ULP (~1e-7) from
        // the reference's (the same sums in another order), and the softmax's derivative is
        // at most 1/2; then an f32 rounding of the mean (6e-8 at 1.0). Measured on lavapipe:
        // 2.5e-8 to 5.1e-8 over six seeds.
        let mut worst = 0f64;
        for view in [View::Center, View::Crops, View::Dense] {
            for &q in &o.scales {
                let got = &r.posteriors[&(view, q)];
                for i in 0..n {
                    let want = expected(&m, &w, data.image(i), stored, q, view);
                    for k in 0..4 {
                        let d = (got[i * 4 + k] as f64 - want[k]).abs();
                        worst = worst.max(d);
                        assert!(
                            d < 1e-5,
                            "{view:?} at {q}, image {i}: {:?} vs {want:?}",
                            &got[i * 4..i * 4 + 4]
                        );
                    }
                }
            }
        }
        eprintln!("largest posterior difference from the CPU: {worst:.2e}");
        check_rows(&r, &data);
        // The same bits again after the network's buffers are poisoned.
        net.poison();
        let again = evaluate(&mut net, &data, &o, |_, _, _| {}).unwrap();
        assert_eq!(again.posteriors, r.posteriors, "deterministic");
    });
}

#[test]
fn scales_it_cannot_run_are_refused_before_any_work() {
    on_each_gpu(|| {
        let m = model();
        let s = seed();
        let (w, data) = fixture(&m, s);
        let o = options();
        let mut net = Network::new(gpu(), &m, &w).unwrap();
        // Scales past the stored images are refused; so is a scale dense cannot run at (a
        // 3x3 average pool needs a 3x3 map, 12 pixels), before any work, naming it.
        let o20 = Options {
            scales: vec![20],
            single: 20,
            ..o.clone()
        };
        let e = evaluate(&mut net, &data, &o20, |_, _, _| {})
            .unwrap_err()
            .to_string();
        assert!(e.contains("stored at, 18"), "{e}");
        let m3 = m.with_avgpool(Some((3, 3))).unwrap();
        let mut net3 = Network::new(gpu(), &m3, &Weights::init(&m3, Init::Kaiming, s)).unwrap();
        let small = Options {
            scales: vec![10, 13],
            ..o.clone()
        };
        let mut passes = 0;
        let e = evaluate(&mut net3, &data, &small, |_, _, _| passes += 1)
            .unwrap_err()
            .to_string();
        assert!(e.contains("dense evaluation at scale 10"), "{e}");
        assert_eq!(passes, 0, "refused before any forward");
    });
}
