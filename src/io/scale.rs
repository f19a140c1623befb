//! The paper's scale protocol on stored images (f32 [c, h, w]): isotropic rescaling so the
//! shorter side is S, crops of the network's input from it, and AlexNet's PCA colour shift.
//! Training draws S per image (scale jittering, [`Jitter`]); evaluation rescales to each
//! test scale Q and takes the whole image (dense) or a grid of crops ([`grid_offsets`]).
//!
//! Images are stored once at the largest scale needed and rescaled from there with PIL's
//! bilinear filter (widened when downscaling, as `io::image`'s resize), in f64 sums.

use super::datasets::Dataset;
use crate::error::{Error, Result};
use rand::Rng;

/// The rescaled size of an image of `(h, w)` whose shorter side becomes `s` (torchvision's
/// rounding: the longer side truncated).
pub fn rescaled(h: usize, w: usize, s: usize) -> (usize, usize) {
    let (rw, rh) = super::image::resized_size(w as u32, h as u32, s as u32);
    (rh as usize, rw as usize)
}

/// Rectangle `(top, left, h, w)` of `img` (shape `(c, hs, ws)`) after rescaling it to
/// `(rh, rw)`: only the rectangle's pixels are computed. A horizontal pass over the rows
/// the rectangle needs, then a vertical one.
pub fn rescale_crop(
    img: &[f32],
    (c, hs, ws): (usize, usize, usize),
    (rh, rw): (usize, usize),
    (top, left, h, w): (usize, usize, usize, usize),
) -> Vec<f32> {
    debug_assert!(top + h <= rh && left + w <= rw && img.len() == c * hs * ws);
    let ty = &super::image::taps(hs, rh)[top..top + h];
    let tx = &super::image::taps(ws, rw)[left..left + w];
    // The source rows any output row reads.
    let (r0, r1) = ty.iter().fold((hs, 0), |(lo, hi), (y0, k)| {
        (lo.min(*y0), hi.max(y0 + k.len()))
    });
    let rows = r1.saturating_sub(r0);
    let mut tmp = vec![0f64; c * rows * w];
    for k in 0..c {
        for y in 0..rows {
            let src = &img[(k * hs + r0 + y) * ws..][..ws];
            for (x, (x0, kx)) in tx.iter().enumerate() {
                tmp[(k * rows + y) * w + x] =
                    kx.iter().zip(&src[*x0..]).map(|(a, b)| a * *b as f64).sum();
            }
        }
    }
    let mut out = vec![0f32; c * h * w];
    for k in 0..c {
        for (y, (y0, ky)) in ty.iter().enumerate() {
            for x in 0..w {
                let acc: f64 = ky
                    .iter()
                    .enumerate()
                    .map(|(i, a)| a * tmp[(k * rows + y0 - r0 + i) * w + x])
                    .sum();
                out[(k * h + y) * w + x] = acc as f32;
            }
        }
    }
    out
}

/// Mirrors each row of a [c, h, w] image in place.
pub fn mirror(img: &mut [f32], w: usize) {
    for row in img.chunks_mut(w) {
        row.reverse();
    }
}

/// The offsets of `n` crops of length `crop` along an axis of length `len`, evenly spaced
/// from one edge to the other (the paper's 5x5 grid is this along each axis); the middle
/// one, rounded down, for n = 1.
pub fn grid_offsets(len: usize, crop: usize, n: usize) -> Vec<usize> {
    let span = len.saturating_sub(crop);
    match n {
        0 => Vec::new(),
        1 => vec![span / 2],
        _ => (0..n)
            .map(|i| ((i * span) as f64 / (n - 1) as f64).round() as usize)
            .collect(),
    }
}

/// The center crop of `(h, w)` from `img` rescaled so its shorter side is `q`.
pub fn center_view(
    img: &[f32],
    dims: (usize, usize, usize),
    q: usize,
    (h, w): (usize, usize),
) -> Vec<f32> {
    let (rh, rw) = rescaled(dims.1, dims.2, q);
    let (top, left) = (grid_offsets(rh, h, 1)[0], grid_offsets(rw, w, 1)[0]);
    rescale_crop(img, dims, (rh, rw), (top, left, h, w))
}

/// Every image of `data` rescaled so its shorter side is `q` and center-cropped to
/// `(h, w)`: the held-out set of a run trained with scale jittering, at its test scale.
pub fn center_views(data: &Dataset, q: usize, (h, w): (usize, usize)) -> Result<Dataset> {
    let (c, hs, ws) = data.dims;
    if q < h.max(w) || q > hs.min(ws) {
        return Err(Error::Shape(format!(
            "a {h}x{w} crop at scale {q} from images stored at {hs}x{ws}"
        )));
    }
    let mut images = Vec::with_capacity(data.len() * c * h * w);
    for i in 0..data.len() {
        images.extend(center_view(data.image(i), data.dims, q, (h, w)));
    }
    Ok(Dataset {
        images,
        labels: data.labels.clone(),
        dims: (c, h, w),
        classes: data.classes,
    })
}

pub use crate::model::card::ColourPca;

/// The standard deviation of the per-image weights of the components (AlexNet's 0.1).
pub const COLOUR_SIGMA: f64 = 0.1;

/// The components of pixels laid out as `c` planes of equal length ([c, N]: one image,
/// or [`pca_of_images`]'s gathering of many), the covariance summed in f64 in
/// pixel order.
pub fn pca(planes: &[f32], c: usize) -> Result<ColourPca> {
    if !(1..=3).contains(&c) || planes.is_empty() || !planes.len().is_multiple_of(c) {
        return Err(Error::Shape(format!(
            "a colour PCA takes pixels of 1 to 3 channels; got {} values of {c} channels",
            planes.len()
        )));
    }
    let n = planes.len() / c;
    let at = |k: usize, p: usize| planes[k * n + p] as f64;
    let mut mean = [0f64; 3];
    for (k, m) in mean.iter_mut().enumerate().take(c) {
        *m = (0..n).map(|p| at(k, p)).sum::<f64>() / n as f64;
    }
    let mut cov = [[0f64; 3]; 3];
    for p in 0..n {
        for i in 0..c {
            for j in 0..c {
                cov[i][j] += (at(i, p) - mean[i]) * (at(j, p) - mean[j]);
            }
        }
    }
    for row in cov.iter_mut().take(c) {
        for v in row.iter_mut().take(c) {
            *v /= n as f64;
        }
    }
    Ok(eigen(&cov, c))
}

/// The components of a set of images of `dims` (each [c, h, w]) laid end to end.
pub fn pca_of_images(images: &[f32], (c, h, w): (usize, usize, usize)) -> Result<ColourPca> {
    let per = c * h * w;
    if per == 0 || !images.len().is_multiple_of(per) {
        return Err(Error::Shape(format!(
            "{} values are not whole {c}x{h}x{w} images",
            images.len()
        )));
    }
    // Gathered to one [c, N] plane set: the covariance of every pixel of every image.
    let n = images.len() / per;
    let mut planes = vec![0f32; images.len()];
    for (i, img) in images.chunks(per).enumerate() {
        for k in 0..c {
            planes[(k * n + i) * h * w..][..h * w].copy_from_slice(&img[k * h * w..][..h * w]);
        }
    }
    pca(&planes, c)
}

/// Eigen-decomposition of the symmetric c x c matrix by Jacobi rotations (exact to f64
/// rounding in a few sweeps at this size), components sorted largest first.
fn eigen(cov: &[[f64; 3]; 3], c: usize) -> ColourPca {
    let mut a = *cov;
    let mut v = [[0f64; 3]; 3];
    for (i, row) in v.iter_mut().enumerate() {
        row[i] = 1.0;
    }
    for _ in 0..50 {
        let off: f64 = (0..c)
            .flat_map(|i| (0..c).filter(move |j| *j != i).map(move |j| (i, j)))
            .map(|(i, j)| a[i][j] * a[i][j])
            .sum();
        if off < 1e-30 {
            break;
        }
        for p in 0..c {
            for q in p + 1..c {
                if a[p][q].abs() < 1e-300 {
                    continue;
                }
                let theta = (a[q][q] - a[p][p]) / (2.0 * a[p][q]);
                // The rotation that zeroes a[p][q] (Numerical Recipes' choice of
                // the smaller angle); signum(0) is 1 in Rust.
                let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                let cs = 1.0 / (t * t + 1.0).sqrt();
                let sn = t * cs;
                // A <- A J (columns p, q), then A <- J^T A (rows p, q).
                for row in a.iter_mut().take(c) {
                    let (akp, akq) = (row[p], row[q]);
                    row[p] = cs * akp - sn * akq;
                    row[q] = sn * akp + cs * akq;
                }
                let (ap, aq) = (a[p], a[q]);
                for k in 0..c {
                    a[p][k] = cs * ap[k] - sn * aq[k];
                    a[q][k] = sn * ap[k] + cs * aq[k];
                }
                for row in v.iter_mut().take(c) {
                    let (vp, vq) = (row[p], row[q]);
                    row[p] = cs * vp - sn * vq;
                    row[q] = sn * vp + cs * vq;
                }
            }
        }
    }
    let mut order: Vec<usize> = (0..c).collect();
    order.sort_by(|x, y| a[*y][*y].total_cmp(&a[*x][*x]));
    ColourPca {
        // A covariance is positive semi-definite: a negative rounding residue is 0.
        values: order.iter().map(|&i| a[i][i].max(0.0) as f32).collect(),
        vectors: order
            .iter()
            .map(|&i| (0..c).map(|k| v[k][i] as f32).collect())
            .collect(),
    }
}

/// The shift of one image: `sum_i vectors[i] * alpha_i * values[i]`, alpha_i drawn
/// from N(0, COLOUR_SIGMA^2), per channel (AlexNet's formula, with the eigenvalue
/// itself as the scale, as its paper and its common implementations have it).
pub fn colour_shift(pca: &ColourPca, r: &mut impl Rng) -> Vec<f32> {
    let alphas: Vec<f64> = (0..pca.values.len())
        .map(|_| crate::model::normal_sample(r) * COLOUR_SIGMA)
        .collect();
    (0..pca.values.len())
        .map(|k| {
            (0..pca.values.len())
                .map(|i| pca.vectors[i][k] as f64 * alphas[i] * pca.values[i] as f64)
                .sum::<f64>() as f32
        })
        .collect()
}

/// The paper's training augmentation: S drawn uniformly from [min, max] per image (min ==
/// max is its fixed-scale training), the stored image rescaled so its shorter side is S, a
/// random crop of the network's input, a horizontal flip with probability 1/2, and the
/// colour shift where given.
#[derive(Clone, Debug, PartialEq)]
pub struct Jitter {
    pub min: usize,
    pub max: usize,
    /// The crop: the network's input (h, w).
    pub crop: (usize, usize),
    pub colour: Option<ColourPca>,
}

/// The scale single-scale evaluation uses for a net trained at scales min..=max: S for a
/// fixed S, else the middle of the jittering range (the paper's Q). The held-out set, the
/// card's resize and `vgg eval`'s default all take it from here.
pub fn test_scale(min: usize, max: usize) -> usize {
    (min + max) / 2
}

impl Jitter {
    /// [`test_scale`] of this range.
    pub fn test_scale(&self) -> usize {
        test_scale(self.min, self.max)
    }

    /// Refuses ranges the stored images or the crop cannot serve.
    pub fn validate(&self, stored: (usize, usize, usize)) -> Result<()> {
        let input = self.crop;
        let bad = |m: String| Error::InvalidOption {
            option: "--scale".into(),
            message: m,
        };
        if self.min > self.max || self.min < input.0.max(input.1) {
            return Err(bad(format!(
                "{}..{}: the scales must be ordered and at least the input side {}",
                self.min,
                self.max,
                input.0.max(input.1)
            )));
        }
        if stored.1.min(stored.2) < self.max {
            return Err(bad(format!(
                "the images are stored at {}x{}, below the largest scale {}",
                stored.1, stored.2, self.max
            )));
        }
        if let Some(p) = &self.colour {
            p.validate(stored.0)?;
        }
        Ok(())
    }

    /// One training view of `img` (shape `dims`), of the crop's size, drawn from `r`.
    pub fn view(&self, img: &[f32], dims: (usize, usize, usize), r: &mut impl Rng) -> Vec<f32> {
        let (h, w) = self.crop;
        let s = r.random_range(self.min..=self.max);
        let (rh, rw) = rescaled(dims.1, dims.2, s);
        let (top, left) = (r.random_range(0..=rh - h), r.random_range(0..=rw - w));
        let mut out = rescale_crop(img, dims, (rh, rw), (top, left, h, w));
        if r.random_bool(0.5) {
            mirror(&mut out, w);
        }
        if let Some(p) = &self.colour {
            let shift = colour_shift(p, r);
            for (plane, d) in out.chunks_mut(h * w).zip(shift) {
                plane.iter_mut().for_each(|v| *v += d);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    /// Rescaling by 1 is the identity; a crop of a rescale is the same rectangle of the
    /// whole rescale; a constant image stays constant (the weights sum to 1).
    #[test]
    fn rescale_crop_agrees_with_the_whole_rescale() {
        let (c, hs, ws) = (2, 13, 17);
        let img: Vec<f32> = (0..c * hs * ws).map(|v| ((v * 7919) % 97) as f32).collect();
        assert_eq!(
            rescale_crop(&img, (c, hs, ws), (hs, ws), (0, 0, hs, ws)),
            img
        );
        for (rh, rw) in [(9, 11), (20, 26), (13, 5)] {
            let whole = rescale_crop(&img, (c, hs, ws), (rh, rw), (0, 0, rh, rw));
            let part = rescale_crop(&img, (c, hs, ws), (rh, rw), (2, 3, rh - 4, rw - 5));
            for k in 0..c {
                for y in 0..rh - 4 {
                    for x in 0..rw - 5 {
                        let a = part[(k * (rh - 4) + y) * (rw - 5) + x];
                        let b = whole[(k * rh + y + 2) * rw + x + 3];
                        assert_eq!(a, b, "{rh}x{rw} at {k},{y},{x}");
                    }
                }
            }
        }
        let flat = vec![0.25f32; c * hs * ws];
        let small = rescale_crop(&flat, (c, hs, ws), (6, 7), (0, 0, 6, 7));
        assert!(small.iter().all(|v| (v - 0.25).abs() < 1e-6), "{small:?}");
    }

    /// Halving a 2x2-block image gives each block's mean: the filter widened to 2 pixels.
    #[test]
    fn downscaling_by_two_averages_blocks() {
        let img: Vec<f32> = vec![
            1.0, 3.0, 10.0, 10.0, //
            5.0, 7.0, 20.0, 30.0, //
            0.0, 0.0, 2.0, 2.0, //
            0.0, 4.0, 2.0, 2.0,
        ];
        let out = rescale_crop(&img, (1, 4, 4), (2, 2), (0, 0, 2, 2));
        // PIL's triangle over 4 taps at 1/4, 3/4, 3/4, 1/4 of the step: the block's two
        // pixels weigh 3/8 each and the neighbours 1/8 (clamped at the edges).
        let row = |a: [f32; 4]| {
            [
                (a[0] * 3.0 + a[1] * 3.0 + a[2]) / 7.0,
                (a[1] + a[2] * 3.0 + a[3] * 3.0) / 7.0,
            ]
        };
        let rows: Vec<[f32; 2]> = img
            .chunks(4)
            .map(|r| row([r[0], r[1], r[2], r[3]]))
            .collect();
        let col = |a: [f32; 4]| {
            [
                (a[0] * 3.0 + a[1] * 3.0 + a[2]) / 7.0,
                (a[1] + a[2] * 3.0 + a[3] * 3.0) / 7.0,
            ]
        };
        for x in 0..2 {
            let want = col([rows[0][x], rows[1][x], rows[2][x], rows[3][x]]);
            for y in 0..2 {
                assert!(
                    (out[y * 2 + x] - want[y]).abs() < 1e-5,
                    "{out:?} vs {want:?}"
                );
            }
        }
    }

    #[test]
    fn grid_offsets_span_edge_to_edge() {
        assert_eq!(grid_offsets(12, 8, 3), vec![0, 2, 4]);
        assert_eq!(grid_offsets(256, 224, 5), vec![0, 8, 16, 24, 32]);
        assert_eq!(grid_offsets(9, 8, 1), vec![0]);
        assert_eq!(grid_offsets(8, 8, 5), vec![0; 5]);
    }

    /// Three channels with a known covariance: the PCA recovers its eigenvalues and
    /// orthonormal eigenvectors, and a vector along each reproduces its value.
    #[test]
    fn colour_pca_finds_the_covariance_eigenpairs() {
        let mut r = rand_chacha::ChaCha8Rng::seed_from_u64(4);
        let n = 20_000;
        // Pixels x = A z with z ~ N(0, I): covariance A A^T.
        let a = [[1.0, 0.5, 0.0], [0.5, 1.0, 0.2], [0.0, 0.2, 0.3]];
        let mut planes = vec![0f32; 3 * n];
        for p in 0..n {
            let z: Vec<f64> = (0..3)
                .map(|_| crate::model::normal_sample(&mut r))
                .collect();
            for k in 0..3 {
                planes[k * n + p] = (0..3).map(|j| a[k][j] * z[j]).sum::<f64>() as f32;
            }
        }
        let p = pca(&planes, 3).unwrap();
        // The sample covariance, and its eigenpairs checked directly: C v = lambda v.
        let mut cov = [[0f64; 3]; 3];
        let mean: Vec<f64> = (0..3)
            .map(|k| {
                planes[k * n..(k + 1) * n]
                    .iter()
                    .map(|v| *v as f64)
                    .sum::<f64>()
                    / n as f64
            })
            .collect();
        for p in 0..n {
            for i in 0..3 {
                for j in 0..3 {
                    cov[i][j] += (planes[i * n + p] as f64 - mean[i])
                        * (planes[j * n + p] as f64 - mean[j])
                        / n as f64;
                }
            }
        }
        assert!(p.values.windows(2).all(|w| w[0] >= w[1]), "{:?}", p.values);
        for (lambda, v) in p.values.iter().zip(&p.vectors) {
            let norm: f32 = v.iter().map(|x| x * x).sum();
            assert!((norm - 1.0).abs() < 1e-5);
            for i in 0..3 {
                let cv: f64 = (0..3).map(|j| cov[i][j] * v[j] as f64).sum();
                assert!((cv - *lambda as f64 * v[i] as f64).abs() < 1e-5, "{p:?}");
            }
        }
        for (x, y) in p.vectors.iter().zip(p.vectors.iter().skip(1)) {
            let dot: f32 = x.iter().zip(y).map(|(a, b)| a * b).sum();
            assert!(dot.abs() < 1e-5);
        }
        // The image layout: two 1x2 images [c, h, w] give the same PCA as their planes.
        let imgs = [1.0f32, 2.0, 0.5, 0.0, 3.0, 4.0, 1.0, 1.5];
        let by_image = pca_of_images(&imgs, (2, 1, 2)).unwrap();
        let planes = [1.0f32, 2.0, 3.0, 4.0, 0.5, 0.0, 1.0, 1.5];
        assert_eq!(by_image, pca(&planes, 2).unwrap());
    }

    /// A jittered view: the input's size, the same for the same seed, and for a flat image
    /// with a colour PCA, flat per channel, shifted along the components.
    #[test]
    fn jittered_views_are_seeded_crops_of_the_rescaled_image() {
        let dims = (3, 24, 24);
        let img: Vec<f32> = (0..3 * 24 * 24).map(|v| (v % 11) as f32 / 10.0).collect();
        let j = Jitter {
            min: 12,
            max: 24,
            crop: (10, 10),
            colour: None,
        };
        j.validate(dims).unwrap();
        assert!(j.validate((3, 20, 20)).is_err());
        assert!(Jitter {
            min: 8,
            ..j.clone()
        }
        .validate(dims)
        .is_err());
        let view = |j: &Jitter, img: &[f32], s| {
            j.view(img, dims, &mut rand_chacha::ChaCha8Rng::seed_from_u64(s))
        };
        assert_eq!(view(&j, &img, 1), view(&j, &img, 1));
        assert_ne!(view(&j, &img, 1), view(&j, &img, 2));
        assert_eq!(view(&j, &img, 1).len(), 300);
        // Every view is some crop of some rescale, mirrored or not: check by search.
        for s in 0..8 {
            let v = view(&j, &img, s);
            let found = (12..=24).any(|q| {
                (0..=q - 10).any(|t| {
                    (0..=q - 10).any(|l| {
                        let c = rescale_crop(&img, dims, (q, q), (t, l, 10, 10));
                        let mut m = c.clone();
                        mirror(&mut m, 10);
                        c == v || m == v
                    })
                })
            });
            assert!(found, "seed {s}");
        }
        let pca = ColourPca {
            values: vec![0.5, 0.1, 0.0],
            vectors: vec![
                vec![1.0, 0.0, 0.0],
                vec![0.0, 0.6, 0.8],
                vec![0.0, 0.8, -0.6],
            ],
        };
        let jc = Jitter {
            colour: Some(pca),
            ..j
        };
        let flat = vec![0.5f32; 3 * 24 * 24];
        let mut seen_shift = false;
        for s in 0..8 {
            let v = view(&jc, &flat, s);
            let d: Vec<f32> = (0..3).map(|k| v[k * 100] - 0.5).collect();
            for k in 0..3 {
                assert!(v[k * 100..(k + 1) * 100]
                    .iter()
                    .all(|x| (x - v[k * 100]).abs() < 1e-6));
            }
            // The shift lies in the span of the first two components: g/b ratio 0.6/0.8.
            assert!((d[1] * 0.8 - d[2] * 0.6).abs() < 1e-6, "{d:?}");
            seen_shift |= d[0].abs() > 1e-4;
        }
        assert!(seen_shift);
    }
}
