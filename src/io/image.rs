//! Images in, network inputs out: decoding (JPEG, PNG; EXIF orientation applied, grayscale
//! widened and alpha dropped as PIL's `convert("RGB")` does), and torchvision's
//! `ImageClassification` preprocessing on PIL images, reproduced: resize of the shorter
//! side with PIL's antialiased bilinear filter in its 8-bit fixed-point arithmetic, center
//! crop, scaling to [0, 1] and normalisation.

use super::file_err;
use crate::error::{Error, Result};
use ::image::{DynamicImage, ImageDecoder, ImageReader, RgbImage};
use std::path::{Path, PathBuf};

/// ImageNet channel means and standard deviations (torchvision's).
pub const IMAGENET_MEAN: [f32; 3] = [0.485, 0.456, 0.406];
pub const IMAGENET_STD: [f32; 3] = [0.229, 0.224, 0.225];

/// The most pixels an image may declare, or reach after the resize, before it is refused
/// (`--max-pixels`): far above any photograph, far below what would exhaust memory (the
/// decoded image takes 3 bytes a pixel, the resize twice that again).
pub const DEFAULT_MAX_PIXELS: u64 = 100_000_000;

/// The largest image file read (a 100-megapixel PNG without compression is 300 MB).
pub const MAX_IMAGE_FILE_BYTES: u64 = 1 << 30;

/// The preprocessing settings; the default is torchvision's preset for VGG.
#[derive(Clone, Debug, PartialEq)]
pub struct Preprocess {
    /// The shorter side is resized to this.
    pub resize: u32,
    /// Then a centered square of this side is cut out; `None` keeps the whole resized image
    /// (dense evaluation).
    pub crop: Option<u32>,
    pub mean: [f32; 3],
    pub std: [f32; 3],
    /// Images declaring more pixels than this, or resized to more, are refused before they
    /// are decoded.
    pub max_pixels: u64,
    /// Channels in B, G, R order (Caffe's); `mean` and `std` are in output order.
    pub bgr: bool,
    /// One channel, the mean of R, G and B (1-channel models); `mean[0]`, `std[0]` apply.
    pub gray: bool,
}

impl Default for Preprocess {
    fn default() -> Self {
        Preprocess {
            resize: 256,
            crop: Some(224),
            mean: IMAGENET_MEAN,
            std: IMAGENET_STD,
            max_pixels: DEFAULT_MAX_PIXELS,
            bgr: false,
            gray: false,
        }
    }
}

/// ImageNet's mean pixel in B, G, R on 0..255 (Caffe's VGG16, and Keras' `preprocess_input`).
pub const CAFFE_MEAN_BGR: [f32; 3] = [103.939, 116.779, 123.68];

impl Preprocess {
    /// The preprocessing a model card records, for a model of `channels` input channels:
    /// the one definition training, evaluation and inference share.
    pub fn from_card(p: &crate::model::card::Preprocessing, channels: usize) -> Preprocess {
        use crate::model::Preset;
        let (mean, std, bgr) = match p.preset {
            Preset::Torchvision => (IMAGENET_MEAN, IMAGENET_STD, false),
            // (v / 255 - m / 255) / (1 / 255) = v - m on 0..255.
            Preset::Caffe => (CAFFE_MEAN_BGR.map(|m| m / 255.0), [1.0 / 255.0; 3], true),
            Preset::Unit => ([0.0; 3], [1.0; 3], false),
        };
        Preprocess {
            resize: p.resize,
            crop: Some(p.crop),
            mean,
            std,
            bgr,
            gray: channels == 1,
            ..Preprocess::default()
        }
    }

    /// Channels of the tensors this produces.
    pub fn channels(&self) -> usize {
        if self.gray {
            1
        } else {
            3
        }
    }
}

/// Decodes an image file to 8-bit RGB, upright per its EXIF orientation, refusing one that
/// declares more than [`DEFAULT_MAX_PIXELS`] (see [`Preprocess::load`] for other caps).
///
/// JPEGs are decoded twice: first by the image crate, whose errors are clean (not an image,
/// truncated, corrupt), then, for the pixels, by libjpeg-turbo (the mozjpeg crate), the
/// decoder PIL uses, so the pixels are those torchvision sees (natively: on wasm32 the
/// image crate's pixels stand). The two differ by up to a
/// few levels per pixel (IDCT rounding and chroma upsampling), enough to move a
/// preprocessed pixel by 3/255.
pub fn load_rgb(path: &Path) -> Result<RgbImage> {
    decode(path, DEFAULT_MAX_PIXELS, None)
}

/// "12.3 megapixels"-style sizes for the errors; under 0.1 megapixels, the count itself
/// (a cap of 1000 would read as "0.0 megapixels").
fn megapixels(p: u64) -> String {
    match p {
        0..100_000 => format!("{p} pixels"),
        _ => format!("{:.1} megapixels", p as f64 / 1e6),
    }
}

/// Decodes `path` unless it declares more than `max_pixels`, or its resize to a shorter
/// side of `resize` would make more: checked from the header, before any pixel buffer.
fn decode(path: &Path, max_pixels: u64, resize: Option<u32>) -> Result<RgbImage> {
    let bytes = super::read_file(path, MAX_IMAGE_FILE_BYTES, "an image")?;
    decode_bytes(&bytes, path, max_pixels, resize)
}

/// [`Preprocess::load`] on the bytes of an image file (`path` names it in errors): what
/// the fuzz targets and the mutation test drive.
pub fn decode_bytes(
    bytes: &[u8],
    path: &Path,
    max_pixels: u64,
    resize: Option<u32>,
) -> Result<RgbImage> {
    // By content, not by name: a text file called x.jpg is not an image.
    let format = match ::image::guess_format(bytes) {
        Ok(f @ (::image::ImageFormat::Jpeg | ::image::ImageFormat::Png)) => f,
        Ok(f) => {
            return Err(file_err(
                path,
                format!("{f:?} images are not supported (JPEG or PNG expected)"),
            ))
        }
        Err(_) => return Err(file_err(path, "not an image (JPEG or PNG expected)")),
    };
    let mut reader = ImageReader::new(std::io::Cursor::new(bytes));
    reader.set_format(format);
    let mut decoder = reader
        .into_decoder()
        .map_err(|e| file_err(path, format!("cannot decode: {e}")))?;
    let orientation = decoder
        .orientation()
        .map_err(|e| file_err(path, format!("cannot read its orientation: {e}")))?;
    let (w, h) = decoder.dimensions();
    if w == 0 || h == 0 {
        return Err(file_err(path, "the image has no pixels"));
    }
    let pixels = w as u64 * h as u64;
    if pixels > max_pixels {
        return Err(file_err(
            path,
            format!(
                "{w}x{h} is {}, over the cap of {} (--max-pixels)",
                megapixels(pixels),
                megapixels(max_pixels)
            ),
        ));
    }
    if let Some(size) = resize {
        let (rw, rh) = resized_size_u64(w, h, size);
        if rw.saturating_mul(rh) > max_pixels {
            return Err(file_err(
                path,
                format!(
                    "{w}x{h} resized to a shorter side of {size} is {rw}x{rh}, {}, over the \
                     cap of {} (--max-pixels)",
                    megapixels(rw.saturating_mul(rh)),
                    megapixels(max_pixels)
                ),
            ));
        }
    }
    let mut img = DynamicImage::from_decoder(decoder)
        .map_err(|e| file_err(path, format!("cannot decode: {e}")))?;
    if format == ::image::ImageFormat::Jpeg && !jpeg_complete(bytes) {
        // Decoders fill a truncated scan with gray; PIL refuses it, and so do we.
        return Err(file_err(
            path,
            "truncated JPEG (no end-of-image marker after the last scan)",
        ));
    }
    // libjpeg-turbo is C, not built for wasm32: there the image crate's pixels stand.
    #[cfg(not(target_arch = "wasm32"))]
    if format == ::image::ImageFormat::Jpeg {
        if let Some(exact) = libjpeg_rgb(bytes).map_err(|e| file_err(path, e))? {
            img = DynamicImage::ImageRgb8(exact);
        }
    }
    img.apply_orientation(orientation);
    Ok(img.to_rgb8())
}

/// Why libjpeg gave up: a fatal error, or a scan that ran into a marker before its end.
#[cfg(not(target_arch = "wasm32"))]
enum Stop {
    Fatal,
    Truncated,
}

/// libjpeg's fatal-error handler: it must not return; unwind to `libjpeg_rgb`.
#[cfg(not(target_arch = "wasm32"))]
unsafe extern "C-unwind" fn fatal(_: &mut mozjpeg_sys::jpeg_common_struct) {
    std::panic::resume_unwind(Box::new(Stop::Fatal));
}

/// libjpeg's message handler. Its warnings are ignored (PIL decodes through most of them,
/// such as extraneous bytes before a marker), except the two that mean the scan ended
/// before the image did: libjpeg then fills the rest with gray, which PIL would refuse.
#[cfg(not(target_arch = "wasm32"))]
unsafe extern "C-unwind" fn warning(
    cinfo: &mut mozjpeg_sys::jpeg_common_struct,
    level: std::os::raw::c_int,
) {
    // SAFETY: libjpeg calls this with `err` pointing at the manager it was given.
    let code = unsafe { cinfo.err.as_ref() }.map_or(0, |e| e.msg_code);
    let truncated = [mozjpeg_sys::JWRN_HIT_MARKER, mozjpeg_sys::JWRN_JPEG_EOF];
    if level < 0 && truncated.iter().any(|c| *c as std::os::raw::c_int == code) {
        std::panic::resume_unwind(Box::new(Stop::Truncated));
    }
}

/// libjpeg-turbo's RGB decoding of a JPEG the image crate already decoded: `Ok(None)` if
/// it declines (a fatal libjpeg error, reported by unwinding and caught here), an error
/// if the scan ends before the image does.
#[cfg(not(target_arch = "wasm32"))]
fn libjpeg_rgb(bytes: &[u8]) -> std::result::Result<Option<RgbImage>, &'static str> {
    // SAFETY: jpeg_std_error fills every field of the zeroed manager it is given.
    let mut err: mozjpeg_sys::jpeg_error_mgr = unsafe { std::mem::zeroed() };
    unsafe { mozjpeg_sys::jpeg_std_error(&mut err) };
    err.error_exit = Some(fatal);
    err.emit_message = Some(warning);
    let decoded = std::panic::catch_unwind(|| -> Option<RgbImage> {
        let d = mozjpeg::Decompress::builder()
            .with_err(err)
            .from_mem(bytes)
            .ok()?;
        let mut rgb = d.rgb().ok()?;
        let (w, h) = (rgb.width() as u32, rgb.height() as u32);
        let px: Vec<[u8; 3]> = rgb.read_scanlines().ok()?;
        rgb.finish().ok()?;
        RgbImage::from_raw(w, h, px.into_iter().flatten().collect())
    });
    match decoded {
        Ok(img) => Ok(img),
        Err(stop) => match stop.downcast_ref::<Stop>() {
            Some(Stop::Truncated) => Err("corrupt JPEG: its scan ends before the image does"),
            _ => Ok(None),
        },
    }
}

/// Whether an end-of-image marker follows the last start-of-scan. Entropy-coded data
/// escapes 0xFF, so neither marker can appear inside a scan.
fn jpeg_complete(b: &[u8]) -> bool {
    let last = |m: u8| b.windows(2).rposition(|w| w[0] == 0xFF && w[1] == m);
    match (last(0xDA), last(0xD9)) {
        (Some(sos), Some(eoi)) => eoi > sos,
        _ => false,
    }
}

/// PIL's bilinear filter.
fn triangle(x: f64) -> f64 {
    let x = x.abs();
    if x < 1.0 {
        1.0 - x
    } else {
        0.0
    }
}

const PRECISION_BITS: u32 = 32 - 8 - 2;

/// PIL's `precompute_coeffs` for one axis: per output position, the first input index and
/// the weights of the triangle filter (widened by the scale when downscaling, so every
/// input pixel counts), normalised to sum to 1. Shared by the 8-bit resize here and the
/// f32 rescaling of stored images (`io::scale`).
pub(crate) fn taps(in_size: usize, out_size: usize) -> Vec<(usize, Vec<f64>)> {
    let scale = in_size as f64 / out_size as f64;
    let filterscale = scale.max(1.0);
    let support = filterscale; // bilinear support 1.0, widened when downscaling
    let ss = 1.0 / filterscale;
    (0..out_size)
        .map(|xx| {
            let center = (xx as f64 + 0.5) * scale;
            // C's (int) cast truncates toward zero; the result is then clamped at 0.
            let xmin = ((center - support + 0.5) as i64).max(0) as usize;
            let xmax = ((center + support + 0.5) as i64).min(in_size as i64) as usize;
            let w: Vec<f64> = (xmin..xmax)
                .map(|x| triangle((x as f64 - center + 0.5) * ss))
                .collect();
            let total: f64 = w.iter().sum();
            let w = w
                .iter()
                .map(|v| if total != 0.0 { v / total } else { *v })
                .collect();
            (xmin, w)
        })
        .collect()
}

/// [`taps`] in PIL's 8-bit fixed point.
fn coeffs(in_size: usize, out_size: usize) -> Vec<(usize, Vec<i32>)> {
    taps(in_size, out_size)
        .into_iter()
        .map(|(xmin, w)| {
            let k = w
                .iter()
                .map(|v| {
                    let f = v * (1u64 << PRECISION_BITS) as f64;
                    (if f < 0.0 { f - 0.5 } else { f + 0.5 }) as i32
                })
                .collect();
            (xmin, k)
        })
        .collect()
}

fn clip8(acc: i64) -> u8 {
    (acc >> PRECISION_BITS).clamp(0, 255) as u8
}

/// Resizes to `w` x `h` exactly as PIL's `Image.resize(..., BILINEAR)` does on an RGB
/// image: a horizontal pass, then a vertical one, each rounding to 8 bits.
pub fn resize_bilinear(img: &RgbImage, w: u32, h: u32) -> RgbImage {
    let (iw, ih) = (img.width() as usize, img.height() as usize);
    let (w, h) = (w as usize, h as usize);
    let src = img.as_raw();
    let half = 1i64 << (PRECISION_BITS - 1);
    let mut tmp = src.clone();
    let mut tw = iw;
    if w != iw {
        let cx = coeffs(iw, w);
        tmp = vec![0u8; w * ih * 3];
        for y in 0..ih {
            for (x, (x0, k)) in cx.iter().enumerate() {
                for c in 0..3 {
                    let mut acc = half;
                    for (i, kv) in k.iter().enumerate() {
                        acc += src[(y * iw + x0 + i) * 3 + c] as i64 * *kv as i64;
                    }
                    tmp[(y * w + x) * 3 + c] = clip8(acc);
                }
            }
        }
        tw = w;
    }
    let mut out = tmp.clone();
    if h != ih {
        let cy = coeffs(ih, h);
        out = vec![0u8; tw * h * 3];
        for (y, (y0, k)) in cy.iter().enumerate() {
            for x in 0..tw {
                for c in 0..3 {
                    let mut acc = half;
                    for (i, kv) in k.iter().enumerate() {
                        acc += tmp[((y0 + i) * tw + x) * 3 + c] as i64 * *kv as i64;
                    }
                    out[(y * tw + x) * 3 + c] = clip8(acc);
                }
            }
        }
    }
    RgbImage::from_raw(tw as u32, h as u32, out).unwrap_or_else(|| RgbImage::new(1, 1))
}

/// torchvision's output size for `Resize(size)` with an int: the shorter side becomes
/// `size`, the longer `int(size * long / short)`. Saturates where the long side would pass
/// u32 (such an image is over any pixel cap, which [`Preprocess::load`] checks first).
pub fn resized_size(w: u32, h: u32, size: u32) -> (u32, u32) {
    let (rw, rh) = resized_size_u64(w, h, size);
    (
        rw.min(u32::MAX as u64) as u32,
        rh.min(u32::MAX as u64) as u32,
    )
}

fn resized_size_u64(w: u32, h: u32, size: u32) -> (u64, u64) {
    let (short, long) = if w <= h { (w, h) } else { (h, w) };
    let new_long = size as u64 * long as u64 / short.max(1) as u64;
    if w <= h {
        (size as u64, new_long)
    } else {
        (new_long, size as u64)
    }
}

/// Python's `round` (half to even) of `v / 2` for a non-negative integer v.
fn half_round_even(v: u32) -> u32 {
    let q = v / 2;
    if v % 2 == 1 && q % 2 == 1 {
        q + 1
    } else {
        q
    }
}

impl Preprocess {
    /// Checks the settings themselves: sizes at least 1, the crop within the resize, and a
    /// resize whose square alone stays within the pixel cap.
    pub fn validate(&self) -> Result<()> {
        if self.resize == 0 || self.crop == Some(0) || self.max_pixels == 0 {
            return Err(Error::InvalidOption {
                option: "preprocessing".into(),
                message: "resize, crop and the pixel cap must be at least 1".into(),
            });
        }
        if let Some(c) = self.crop.filter(|c| *c > self.resize) {
            return Err(Error::InvalidOption {
                option: "--crop".into(),
                message: format!("crop {c} is larger than the resize {}", self.resize),
            });
        }
        let square = self.resize as u64 * self.resize as u64;
        if square > self.max_pixels {
            return Err(Error::InvalidOption {
                option: "--resize".into(),
                message: format!(
                    "{0}: even a square image resized to {0}x{0} is {1}, over the cap of {2} \
                     (--max-pixels)",
                    self.resize,
                    megapixels(square),
                    megapixels(self.max_pixels)
                ),
            });
        }
        Ok(())
    }

    /// The image at `path`, decoded unless it declares more than `max_pixels` or would
    /// resize to more (checked from its header, before decoding).
    pub fn load(&self, path: &Path) -> Result<RgbImage> {
        decode(path, self.max_pixels, Some(self.resize))
    }

    /// Resized and cropped RGB image, before scaling and normalisation.
    pub fn geometry(&self, img: &RgbImage) -> Result<RgbImage> {
        self.validate()?;
        let (w, h) = resized_size_u64(img.width(), img.height(), self.resize);
        if w.saturating_mul(h) > self.max_pixels {
            return Err(Error::Shape(format!(
                "a {}x{} image resized to a shorter side of {} is {w}x{h}, over the cap of {} \
                 (--max-pixels)",
                img.width(),
                img.height(),
                self.resize,
                megapixels(self.max_pixels)
            )));
        }
        let (w, h) = (w as u32, h as u32);
        let r = resize_bilinear(img, w.max(1), h.max(1));
        let Some(c) = self.crop else { return Ok(r) };
        // torchvision: top = int(round((h - c) / 2)), Python rounding.
        let top = half_round_even(r.height() - c);
        let left = half_round_even(r.width() - c);
        Ok(::image::imageops::crop_imm(&r, left, top, c, c).to_image())
    }

    /// The normalised CHW f32 tensor data for one image.
    pub fn apply(&self, img: &RgbImage) -> Result<Vec<f32>> {
        let g = self.geometry(img)?;
        Ok(self.tensor(&g))
    }

    /// An already resized and cropped image as CHW values: (v / 255 - mean) / std per
    /// channel, in B, G, R order with `bgr`, or one gray channel with `gray`.
    pub fn tensor(&self, img: &RgbImage) -> Vec<f32> {
        if !self.gray && !self.bgr {
            return to_chw(img, self.mean, self.std);
        }
        let raw = img.as_raw();
        let plane = img.width() as usize * img.height() as usize;
        if self.gray {
            return (0..plane)
                .map(|p| {
                    let v =
                        (raw[p * 3] as f32 + raw[p * 3 + 1] as f32 + raw[p * 3 + 2] as f32) / 765.0;
                    (v - self.mean[0]) / self.std[0]
                })
                .collect();
        }
        let mut out = vec![0.0f32; 3 * plane];
        for c in 0..3 {
            for p in 0..plane {
                let v = raw[p * 3 + (2 - c)] as f32 / 255.0;
                out[c * plane + p] = (v - self.mean[c]) / self.std[c];
            }
        }
        out
    }
}

/// 8-bit RGB to normalised CHW f32: (v / 255 - mean) / std per channel.
pub fn to_chw(img: &RgbImage, mean: [f32; 3], std: [f32; 3]) -> Vec<f32> {
    let (w, h) = (img.width() as usize, img.height() as usize);
    let raw = img.as_raw();
    let mut out = vec![0.0f32; 3 * w * h];
    for c in 0..3 {
        for p in 0..w * h {
            out[c * w * h + p] = (raw[p * 3 + c] as f32 / 255.0 - mean[c]) / std[c];
        }
    }
    out
}

/// Mirrors an image left to right (for the flipped half of dense evaluation).
pub fn flip_horizontal(img: &RgbImage) -> RgbImage {
    ::image::imageops::flip_horizontal(img)
}

/// File extensions taken from a directory (files named explicitly are tried whatever their
/// name).
pub const IMAGE_EXTENSIONS: &[&str] = &["jpg", "jpeg", "png"];

/// The files to classify: each path given, with directories expanded (recursively, sorted,
/// images by extension only). A path that does not exist is an error. Files named
/// explicitly are taken as given (twice if named twice: feature rows follow the list);
/// within directories each real file comes once, however many links lead to it, and each
/// real directory is walked once, so a link back up the tree ends instead of looping.
pub fn collect_images(inputs: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for p in inputs {
        if p.is_dir() {
            walk(p, &mut out, &mut seen)?;
        } else if p.exists() || p.symlink_metadata().is_ok() {
            out.push(p.clone());
        } else {
            return Err(file_err(p, "no such file or directory"));
        }
    }
    Ok(out)
}

/// What makes a file or directory the same one by another path: its device and inode
/// (one stat), not its resolved path (a walk of every component, each level again).
#[derive(Hash, PartialEq, Eq)]
enum FileId {
    #[cfg(unix)]
    Inode(u64, u64),
    Path(PathBuf),
}

fn file_id(path: &Path, meta: &std::fs::Metadata) -> FileId {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let _ = path;
        FileId::Inode(meta.dev(), meta.ino())
    }
    #[cfg(not(unix))]
    {
        let _ = meta;
        FileId::Path(std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf()))
    }
}

/// Depth first in sorted order, on a stack of its own (no recursion, however deep the
/// tree), each directory and image file identified by one stat: time and memory linear
/// in the entries at any depth.
fn walk(
    root: &Path,
    out: &mut Vec<PathBuf>,
    seen: &mut std::collections::HashSet<FileId>,
) -> Result<()> {
    let list = |dir: &Path| -> Result<std::vec::IntoIter<PathBuf>> {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(|e| file_err(dir, format!("cannot list: {e}")))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        entries.sort();
        Ok(entries.into_iter())
    };
    let meta = std::fs::metadata(root).map_err(|e| file_err(root, format!("cannot list: {e}")))?;
    if !seen.insert(file_id(root, &meta)) {
        return Ok(());
    }
    let mut stack = vec![list(root)?];
    while let Some(top) = stack.last_mut() {
        let Some(p) = top.next() else {
            stack.pop();
            continue;
        };
        let meta = std::fs::metadata(&p);
        if meta.as_ref().is_ok_and(|m| m.is_dir()) {
            if let Ok(m) = &meta {
                if seen.insert(file_id(&p, m)) {
                    stack.push(list(&p)?);
                }
            }
        } else if p
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| IMAGE_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
        {
            // A broken link is listed as it is: decoding it reports the file.
            let new = match &meta {
                Ok(m) => seen.insert(file_id(&p, m)),
                Err(_) => seen.insert(FileId::Path(p.clone())),
            };
            if new {
                out.push(p);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_caps_read_as_pixels() {
        assert_eq!(megapixels(1000), "1000 pixels");
        assert_eq!(megapixels(99_999), "99999 pixels");
        assert_eq!(megapixels(100_000), "0.1 megapixels");
        assert_eq!(megapixels(40_000_000), "40.0 megapixels");
    }

    #[test]
    fn sizes_and_rounding_follow_torchvision() {
        assert_eq!(resized_size(640, 480, 256), (341, 256));
        assert_eq!(resized_size(300, 451, 256), (256, 384));
        assert_eq!(half_round_even(117), 58); // round(58.5) == 58
        assert_eq!(half_round_even(119), 60); // round(59.5) == 60
        assert_eq!(half_round_even(32), 16);
    }

    #[test]
    fn resize_to_the_same_size_is_identity() {
        let img = RgbImage::from_fn(5, 4, |x, y| ::image::Rgb([x as u8 * 40, y as u8 * 60, 7]));
        assert_eq!(resize_bilinear(&img, 5, 4), img);
        // A constant image stays constant under any resize.
        let flat = RgbImage::from_pixel(37, 23, ::image::Rgb([10, 200, 99]));
        let r = resize_bilinear(&flat, 11, 51);
        assert!(r.pixels().all(|p| p.0 == [10, 200, 99]));
    }
}
