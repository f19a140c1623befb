//! Winograd F(4x4, 3x3)'s and F(2x2, 3x3)'s error against the f64 reference at every
//! distinct conv shape of VGG16 (batch 1, 224x224), beside the Subgroup (direct) kernel's,
//! on two kinds of input:
//! uniform random in [-1, 1) with uniform weights, and real-scale data: the layer's input
//! as the network computes it from a photo (torchvision preprocessing) with Kaiming
//! weights. Prints relative L2 and max relative-to-scale errors; the README's Winograd
//! tolerance comes from this table.
//!
//! cargo run --release --example winograd_accuracy [-- IMAGE]

use vgg_wgpu::check::TensorRng;
use vgg_wgpu::io::image::Preprocess;
use vgg_wgpu::kernels::conv::{Conv2d, ConvShape, ConvTune, ConvVariant};
use vgg_wgpu::model::Op;
use vgg_wgpu::{reference, Gpu, GpuOptions, Init, Model, Network, Tensor, Weights};

fn errors(got: &[f32], want: &[f32]) -> (f64, f64) {
    let (mut num, mut den, mut max, mut scale) = (0.0f64, 0.0f64, 0.0f64, 0.0f64);
    for (g, w) in got.iter().zip(want) {
        let (g, w) = (*g as f64, *w as f64);
        num += (g - w) * (g - w);
        den += w * w;
        max = max.max((g - w).abs());
        scale = scale.max(w.abs());
    }
    ((num / den).sqrt(), max / scale)
}

fn run(gpu: &Gpu, s: ConvShape, v: ConvVariant, x: &[f32], w: &[f32], b: &[f32]) -> Vec<f32> {
    let tune = ConvTune {
        variant: v,
        ..ConvTune::default_for(gpu)
    };
    let conv = Conv2d::with_tune(gpu, s, false, tune).expect("conv");
    let p = conv.upload(gpu, w, b).expect("upload");
    let xb = gpu.upload("x", x).expect("x");
    let y = gpu.alloc("y", (s.output_len() * 4) as u64).expect("alloc");
    let bg = conv.bind(gpu, &xb, &p, &y).expect("bind");
    gpu.run_pass("conv", |pass| conv.encode(gpu, pass, &bg))
        .expect("run");
    gpu.read(&y, s.output_len()).expect("read")
}

fn main() -> vgg_wgpu::Result<()> {
    let image = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "tests/fixtures/images/chelsea.png".into());
    let gpu = Gpu::new(&GpuOptions::default())?;
    let model = Model::vgg16();
    let weights = Weights::init(&model, Init::Kaiming, 0);
    let mut net = Network::new(&gpu, &model, &weights)?;
    let pre = Preprocess::default();
    let photo = Tensor::new(vec![1, 3, 224, 224], pre.apply(&pre.load(image.as_ref())?)?)?;
    println!("adapter: {}", gpu.describe());
    println!(
        "layer    shape                 data    rel L2 F(4x4)    F(2x2)  Subgroup   max/scale \
         F(4x4)    F(2x2)  Subgroup"
    );
    let layers = model.layers();
    let mut seen = Vec::new();
    for (i, l) in layers.iter().enumerate() {
        let Op::Conv { c_in, c_out, k } = l.op else {
            continue;
        };
        let [_, h, wd] = l.output;
        let s = ConvShape::new(1, c_in, c_out, h, wd, k);
        if seen.contains(&s) {
            continue;
        }
        seen.push(s);
        let wt = &weights
            .get(&format!("{}.weight", l.key))
            .expect("weight")
            .data;
        let bias = &weights.get(&format!("{}.bias", l.key)).expect("bias").data;
        // The layer's real input: the photo itself, or the previous layer's output.
        let real = match i {
            0 => photo.data.clone(),
            _ => net.forward_features(&photo, &layers[i - 1].name)?.data,
        };
        let mut rng = TensorRng::new(i as u64);
        let (rx, rw, rb) = (
            rng.uniform(s.input_len()),
            rng.uniform(s.weight_len()),
            rng.uniform(c_out),
        );
        for (data, x, w, b) in [("random", &rx, &rw, &rb), ("photo", &real, wt, bias)] {
            let want = reference::conv::forward(x, (1, c_in, h, wd), (w, b), c_out, k, false);
            let (wl2, wmax) = errors(&run(&gpu, s, ConvVariant::Winograd, x, w, b), &want);
            let (w2l2, w2max) = errors(&run(&gpu, s, ConvVariant::Winograd2, x, w, b), &want);
            let (sl2, smax) = errors(&run(&gpu, s, ConvVariant::Subgroup, x, w, b), &want);
            println!(
                "{:<8} {:<21} {data:<7} {wl2:>13.2e} {w2l2:>9.2e} {sl2:>9.2e}   \
                 {wmax:>13.2e} {w2max:>9.2e} {smax:>9.2e}",
                l.name,
                format!("{c_in}->{c_out} {h}x{wd}"),
            );
        }
    }
    Ok(())
}
