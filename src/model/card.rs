//! What a weights file says about itself, in its safetensors metadata: the architecture
//! (the whole [`Config`], enough to rebuild the [`Model`]), the preprocessing its inputs
//! need, and the class names. The engine writes one into every file it saves; `vgg infer`
//! reads it, so a trained model needs no flags to run.

use super::{Config, Model};
use crate::error::{Error, Result};
use std::collections::HashMap;

/// How pixels become a network's input.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Preset {
    /// torchvision's: RGB scaled to [0, 1], ImageNet's mean and std (PyTorch's VGGs).
    Torchvision,
    /// Caffe's and Keras' VGG16: BGR on 0..255 minus ImageNet's mean pixel.
    Caffe,
    /// RGB (or its gray mean, for 1 channel) scaled to [0, 1]: what this engine's trainer
    /// feeds the networks it trains.
    Unit,
}

impl Preset {
    pub const ALL: [Preset; 3] = [Preset::Torchvision, Preset::Caffe, Preset::Unit];

    pub fn name(self) -> &'static str {
        match self {
            Preset::Torchvision => "torchvision",
            Preset::Caffe => "caffe",
            Preset::Unit => "unit",
        }
    }

    pub fn parse(s: &str) -> Result<Preset> {
        Preset::ALL
            .into_iter()
            .find(|p| p.name() == s.trim())
            .ok_or_else(|| Error::InvalidOption {
                option: "--preprocess".into(),
                message: format!("'{s}': use torchvision, caffe or unit"),
            })
    }
}

/// The preprocessing a model was trained with: a preset, the shorter side images are
/// resized to and the side of the center crop (the network's input).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Preprocessing {
    pub preset: Preset,
    pub resize: u32,
    pub crop: u32,
}

/// A model's self-description.
#[derive(Clone, Debug, PartialEq)]
pub struct Card {
    pub config: Config,
    pub preprocessing: Preprocessing,
    /// One per class, in class order.
    pub classes: Vec<String>,
}

const MODEL: &str = "vgg.model";
const PREPROCESSING: &str = "vgg.preprocessing";
const CLASSES: &str = "vgg.classes";

impl Card {
    /// The card of `model` with this preprocessing and these class names (one per class).
    pub fn new(model: &Model, preprocessing: Preprocessing, classes: Vec<String>) -> Result<Card> {
        if classes.len() != model.classes() {
            return Err(Error::InvalidOption {
                option: "class names".into(),
                message: format!(
                    "{} names for a model of {} classes",
                    classes.len(),
                    model.classes()
                ),
            });
        }
        Ok(Card {
            config: model.config().clone(),
            preprocessing,
            classes,
        })
    }

    /// The safetensors metadata entries that hold the card (JSON values).
    pub fn to_metadata(&self) -> HashMap<String, String> {
        let json = |v: serde_json::Result<String>| v.unwrap_or_default();
        [
            (MODEL, json(serde_json::to_string(&self.config))),
            (
                PREPROCESSING,
                json(serde_json::to_string(&self.preprocessing)),
            ),
            (CLASSES, json(serde_json::to_string(&self.classes))),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }

    /// The card in a file's metadata: `None` where the file has none (torchvision's, or
    /// written before cards existed); an error naming the entry where one is malformed or
    /// its model is invalid.
    pub fn from_metadata(
        meta: &HashMap<String, String>,
    ) -> std::result::Result<Option<Card>, String> {
        let Some(model) = meta.get(MODEL) else {
            return Ok(None);
        };
        let bad = |k: &str, e: &dyn std::fmt::Display| format!("metadata {k}: {e}");
        let config: Config = serde_json::from_str(model).map_err(|e| bad(MODEL, &e))?;
        let m = Model::new(config.clone()).map_err(|e| bad(MODEL, &e))?;
        let preprocessing: Preprocessing = meta
            .get(PREPROCESSING)
            .map(|p| serde_json::from_str(p).map_err(|e| bad(PREPROCESSING, &e)))
            .transpose()?
            .ok_or_else(|| bad(PREPROCESSING, &"missing"))?;
        let classes: Vec<String> = meta
            .get(CLASSES)
            .map(|c| serde_json::from_str(c).map_err(|e| bad(CLASSES, &e)))
            .transpose()?
            .unwrap_or_else(|| (0..m.classes()).map(|i| format!("class {i}")).collect());
        if classes.len() != m.classes() {
            return Err(bad(
                CLASSES,
                &format!("{} names for {} classes", classes.len(), m.classes()),
            ));
        }
        Ok(Some(Card {
            config,
            preprocessing,
            classes,
        }))
    }

    pub fn model(&self) -> Result<Model> {
        Model::new(self.config.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_card_survives_its_metadata() {
        let m = Model::parse("8,M,16:1,L,M")
            .and_then(|m| m.with_input(1, 20, 24))
            .and_then(|m| m.with_batch_norm(true))
            .and_then(|m| m.with_hidden(&[7]))
            .and_then(|m| m.with_classes(2))
            .unwrap();
        let pre = Preprocessing {
            preset: Preset::Unit,
            resize: 24,
            crop: 20,
        };
        let card = Card::new(&m, pre, vec!["cats".into(), "dogs".into()]).unwrap();
        let back = Card::from_metadata(&card.to_metadata()).unwrap().unwrap();
        assert_eq!(back, card);
        assert_eq!(back.model().unwrap(), m);
        assert!(Card::from_metadata(&HashMap::new()).unwrap().is_none());
        let mut broken = card.to_metadata();
        broken.insert(CLASSES.into(), "[\"one\"]".into());
        assert!(Card::from_metadata(&broken)
            .unwrap_err()
            .contains("vgg.classes"));
        assert!(Card::new(&m, pre, vec![]).is_err());
    }
}
