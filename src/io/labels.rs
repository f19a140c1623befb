//! Class names: ImageNet's 1000 (torchvision's list, bundled), or a text file, one per line.

use crate::error::Result;
use std::path::Path;

const IMAGENET: &str = include_str!("imagenet_classes.txt");

/// The 1000 ImageNet class names in torchvision's order.
pub fn imagenet() -> Vec<String> {
    IMAGENET.lines().map(str::to_string).collect()
}

/// Class names from a file, one per line (blank lines at the end ignored): exactly one
/// per class of the model, or an error naming the file (a short list would otherwise show
/// some classes as "class N" and a long one names that no class has).
pub fn from_file(path: &Path, classes: usize) -> Result<Vec<String>> {
    // A million class names of a line each is far past any label file.
    let text = super::read_text(path, 64 << 20, "a labels file")?;
    let mut names: Vec<String> = text.lines().map(|l| l.trim().to_string()).collect();
    while names.last().is_some_and(|n| n.is_empty()) {
        names.pop();
    }
    if names.len() != classes {
        return Err(super::file_err(
            path,
            format!(
                "holds {} class names, one per line; the model has {classes} classes",
                names.len()
            ),
        ));
    }
    Ok(names)
}

/// The `k` largest entries of a row as (class index, value), largest first.
pub fn top_k(row: &[f32], k: usize) -> Vec<(usize, f32)> {
    let mut idx: Vec<usize> = (0..row.len()).collect();
    idx.sort_by(|&a, &b| row[b].total_cmp(&row[a]).then(a.cmp(&b)));
    idx.into_iter().take(k).map(|i| (i, row[i])).collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn imagenet_has_1000_names() {
        let l = super::imagenet();
        assert_eq!(l.len(), 1000);
        assert_eq!((l[0].as_str(), l[281].as_str()), ("tench", "tabby"));
        let t = super::top_k(&[0.1, 0.7, 0.2, 0.7], 3);
        assert_eq!(t, vec![(1, 0.7), (3, 0.7), (2, 0.2)]);
    }
}
