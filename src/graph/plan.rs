//! Memory planning: stages, chunk sizes and buffer slots, as pure arithmetic over a graph
//! and the adapter's limits (so `vgg summary` and tests can plan without a device).

use super::{Graph, TensorId};
use crate::error::{Error, Result};
use std::collections::BTreeMap;
use std::ops::Range;

/// The adapter limits the planner respects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest byte range one storage binding may cover.
    pub max_binding: u64,
    /// Largest buffer.
    pub max_buffer: u64,
}

/// A run of consecutive nodes executed over groups of `chunk` images (`chunk` equal to the
/// batch means one pass over all of it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stage {
    pub nodes: Range<usize>,
    pub chunk: usize,
}

/// Where one tensor instance lives: a slot (one GPU buffer) at offset 0, and its bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Place {
    pub slot: usize,
    pub bytes: u64,
}

/// The plan of one forward at one batch size.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    pub batch: usize,
    pub stages: Vec<Stage>,
    /// Each tensor at the whole batch, where it is held so.
    pub full: Vec<Option<Place>>,
    /// Each (tensor, stage) held at the stage's chunk size inside a chunked stage.
    pub local: BTreeMap<(TensorId, usize), Place>,
    /// Slot sizes in bytes; each slot becomes one buffer.
    pub slots: Vec<u64>,
    /// Bytes of the host-readable buffer that receives the outputs.
    pub readback: u64,
}

impl Plan {
    /// Activation memory: the slots (the input included).
    pub fn activation_bytes(&self) -> u64 {
        self.slots.iter().sum()
    }
    /// Everything a forward allocates besides the weights.
    pub fn bytes(&self) -> u64 {
        self.activation_bytes() + self.readback
    }
    pub fn stage_of(&self, node: usize) -> usize {
        self.stages
            .iter()
            .position(|s| s.nodes.contains(&node))
            .unwrap_or(0)
    }
    pub fn chunked(&self, stage: usize) -> bool {
        self.stages[stage].chunk < self.batch
    }
    /// Sizes of the chunks of a stage, in order.
    pub fn chunks(&self, stage: usize) -> Vec<usize> {
        let c = self.stages[stage].chunk;
        (0..self.batch)
            .step_by(c)
            .map(|b0| c.min(self.batch - b0))
            .collect()
    }
}

/// Plans `graph` at `batch` under `limits`. With a memory `budget` (bytes available for
/// activations), stages are chunked further until the plan fits, and a plan that cannot fit
/// even one image at a time is an error that states both numbers.
pub fn plan(graph: &Graph, batch: usize, limits: Limits, budget: Option<u64>) -> Result<Plan> {
    if batch == 0 || batch > MAX_BATCH {
        return Err(Error::InvalidOption {
            option: "batch".into(),
            message: format!("batch size {batch} must be from 1 to {MAX_BATCH}"),
        });
    }
    let hard = limits.max_binding.min(limits.max_buffer);
    let mut soft = hard;
    let mut best: Option<Plan> = None;
    loop {
        let p = plan_with_cap(graph, batch, limits, hard, soft)?;
        let fits = budget.is_none_or(|b| p.bytes() <= b);
        if fits {
            return Ok(p);
        }
        let smaller = best.as_ref().is_none_or(|b| p.bytes() < b.bytes());
        if !smaller || soft < 4 {
            let need = best.map_or(p.bytes(), |b| b.bytes().min(p.bytes()));
            return Err(Error::Limit(format!(
                "a forward at batch {batch} needs {need} bytes of activation memory even one \
                 image at a time, and {} bytes are available",
                budget.unwrap_or(0)
            )));
        }
        best = Some(p);
        soft /= 2;
    }
}

/// The largest batch planned: with one image's tensors at most 16 GiB (the model's bound),
/// no byte count of a plan overflows.
pub const MAX_BATCH: usize = 1 << 20;

fn plan_with_cap(
    graph: &Graph,
    batch: usize,
    limits: Limits,
    hard: u64,
    soft: u64,
) -> Result<Plan> {
    let stages = stages(graph, batch, hard, soft)?;
    let instances = lifetimes(graph, batch, limits, &stages)?;
    let (slots, full, local) = allocate(instances, graph.tensors.len());
    let t = &graph.tensors;
    let readback = graph
        .outputs
        .iter()
        .map(|o| (t[o.0].image_bytes() * batch as u64).next_multiple_of(4))
        .sum();
    Ok(Plan {
        batch,
        stages,
        full,
        local,
        slots,
        readback,
    })
}

/// Runs of consecutive nodes at the whole batch or in groups of images: a node allows as
/// many images per group as keep its input and output within one binding (`hard`) and
/// near the memory budget (`soft`).
fn stages(graph: &Graph, batch: usize, hard: u64, soft: u64) -> Result<Vec<Stage>> {
    let nodes = &graph.nodes;
    let t = &graph.tensors;
    // Images per group each node allows: its input and output must fit one binding.
    let mut natural = Vec::with_capacity(nodes.len());
    for n in nodes {
        let per = t[n.input].image_bytes().max(t[n.output].image_bytes());
        let fit = hard / per;
        if fit == 0 {
            return Err(Error::Limit(format!(
                "one image's activation at {} takes {per} bytes, over the adapter's binding \
                 limit of {hard} bytes; use a smaller input",
                n.name
            )));
        }
        natural.push((fit.min((soft / per).max(1)) as usize).min(batch));
    }
    // Consecutive nodes that need chunking form one stage chunked at their minimum,
    // balanced so the groups are even (16 at a limit of 10 runs as 8 + 8).
    let mut stages: Vec<Stage> = Vec::new();
    for (i, &nat) in natural.iter().enumerate() {
        let full = nat >= batch;
        match stages.last_mut() {
            Some(s) if (s.chunk >= batch) == full => {
                s.nodes.end = i + 1;
                s.chunk = s.chunk.min(nat);
            }
            _ => stages.push(Stage {
                nodes: i..i + 1,
                chunk: nat,
            }),
        }
    }
    for s in &mut stages {
        let groups = batch.div_ceil(s.chunk);
        s.chunk = batch.div_ceil(groups);
    }
    // Group copies start at image b0 and must be 4-byte aligned (2-byte f16 tensors with
    // an odd element count per image would not be).
    for (si, s) in stages.iter().enumerate() {
        if s.chunk < batch {
            for n in &nodes[s.nodes.clone()] {
                for id in [n.input, n.output] {
                    if !t[id].image_bytes().is_multiple_of(4) {
                        return Err(Error::Limit(format!(
                            "stage {si} runs in groups of images, and {} holds an odd number \
                             of 2-byte elements per image; use f32 or a smaller batch",
                            t[id].name
                        )));
                    }
                }
            }
        }
    }
    Ok(stages)
}

/// A tensor's instance: (defined at, last used at, bytes, tensor, None for the whole-batch
/// instance or Some(stage) for the group-sized copy local to a chunked stage).
type Instance = (usize, usize, u64, TensorId, Option<usize>);

/// Every tensor instance with its lifetime, in order of definition. Node i runs at time
/// i + 1; the input exists from 0; requested outputs live to the end.
fn lifetimes(
    graph: &Graph,
    batch: usize,
    limits: Limits,
    stages: &[Stage],
) -> Result<Vec<Instance>> {
    let (nodes, t) = (&graph.nodes, &graph.tensors);
    let stage_of = |node: usize| stages.iter().position(|s| s.nodes.contains(&node));
    let chunked = |s: usize| stages[s].chunk < batch;
    let end = nodes.len() + 1;
    // Times: node i runs at i + 1; the input exists from 0; outputs are read at `end`.
    let mut consumers: Vec<Vec<usize>> = vec![Vec::new(); t.len()];
    for (i, n) in nodes.iter().enumerate() {
        consumers[n.input].push(i);
    }
    let producers = graph.producers();
    let requested: Vec<TensorId> = graph.outputs.iter().map(|o| o.0).collect();

    let mut instances: Vec<Instance> = Vec::new();
    for id in 0..t.len() {
        let img = t[id].image_bytes();
        let ps = producers[id].and_then(stage_of);
        let cons = &consumers[id];
        if cons.is_empty() && !requested.contains(&id) {
            continue;
        }
        let needs_full = match ps {
            None => true,
            Some(s) if !chunked(s) => true,
            Some(s) => requested.contains(&id) || cons.iter().any(|&c| stage_of(c) != Some(s)),
        };
        if needs_full {
            let def = match (producers[id], ps) {
                (None, _) => 0,
                (Some(_), Some(s)) if chunked(s) => stages[s].nodes.start + 1,
                (Some(p), _) => p + 1,
            };
            let mut last = def;
            if requested.contains(&id) {
                last = end;
            }
            if let Some(s) = ps.filter(|&s| chunked(s)) {
                last = last.max(stages[s].nodes.end);
            }
            for &c in cons {
                let cs = stage_of(c);
                match cs {
                    Some(s) if chunked(s) && Some(s) != ps => last = last.max(stages[s].nodes.end),
                    Some(s) if chunked(s) => {}
                    _ => last = last.max(c + 1),
                }
            }
            let bytes = img * batch as u64;
            if bytes > limits.max_buffer {
                return Err(Error::Limit(format!(
                    "{} at batch {batch} takes {bytes} bytes, over the adapter's max buffer \
                     size of {}; use a smaller batch",
                    t[id].name, limits.max_buffer
                )));
            }
            instances.push((def, last, bytes, id, None));
        }
        // Local copies in chunked stages that produce or read the tensor.
        let mut local_stages: Vec<usize> = cons
            .iter()
            .filter_map(|&c| stage_of(c))
            .chain(ps)
            .filter(|&s| chunked(s))
            .collect();
        local_stages.sort_unstable();
        local_stages.dedup();
        for s in local_stages {
            let st = &stages[s];
            let def = if ps == Some(s) {
                producers[id].map_or(0, |p| p + 1)
            } else {
                st.nodes.start + 1
            };
            let mut last = cons
                .iter()
                .filter(|&&c| stage_of(c) == Some(s))
                .map(|&c| c + 1)
                .max()
                .unwrap_or(def);
            if ps == Some(s) && needs_full {
                // Copied out to the full tensor at the end of every group.
                last = st.nodes.end;
            }
            instances.push((def, last, img * st.chunk as u64, id, Some(s)));
        }
    }
    instances.sort_by_key(|i| i.0);

    Ok(instances)
}

/// Slots for the instances, and each tensor's place: whole-batch ones by tensor, local
/// ones by (tensor, stage).
#[allow(clippy::type_complexity)]
fn allocate(
    instances: Vec<Instance>,
    tensors: usize,
) -> (
    Vec<u64>,
    Vec<Option<Place>>,
    BTreeMap<(TensorId, usize), Place>,
) {
    // Greedy interval allocation: reuse a slot whose tenant is dead, the smallest that
    // holds the tensor, else the largest free one (grown), else a new slot.
    let mut slots: Vec<u64> = Vec::new();
    let mut busy_until: Vec<usize> = Vec::new();
    let mut full = vec![None; tensors];
    let mut local = BTreeMap::new();
    for (def, last, bytes, id, stage) in instances {
        let free: Vec<usize> = (0..slots.len()).filter(|&s| busy_until[s] < def).collect();
        let fit = free
            .iter()
            .copied()
            .filter(|&s| slots[s] >= bytes)
            .min_by_key(|&s| slots[s]);
        let slot = match fit.or_else(|| free.iter().copied().max_by_key(|&s| slots[s])) {
            Some(s) => s,
            None => {
                slots.push(0);
                busy_until.push(0);
                slots.len() - 1
            }
        };
        slots[slot] = slots[slot].max(bytes);
        busy_until[slot] = last;
        let place = Place { slot, bytes };
        match stage {
            None => full[id] = Some(place),
            Some(s) => {
                local.insert((id, s), place);
            }
        }
    }
    (slots, full, local)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Model, Summary};

    const LAVAPIPE: Limits = Limits {
        max_binding: 128 << 20,
        max_buffer: 2 << 30,
    };

    #[test]
    fn vgg16_batch8_reuses_buffers() {
        let m = Model::vgg16();
        let g = Graph::build(&m, &["fc8"]).unwrap();
        let p = plan(&g, 8, LAVAPIPE, None).unwrap();
        let all = Summary {
            model: &m,
            batch: 8,
        }
        .activation_bytes();
        // conv1_1 and conv1_2 at batch 8 are 102.8 MB each, under one binding.
        assert_eq!(p.stages.len(), 1);
        assert!(
            p.activation_bytes() * 10 < all * 4,
            "{} vs {all}",
            p.activation_bytes()
        );
        // Peak close to the two largest live tensors plus the input.
        let big = 64 * 224 * 224 * 4 * 8;
        assert!(p.activation_bytes() <= 2 * big + 3 * 224 * 224 * 4 * 8);
    }

    #[test]
    fn vgg16_batch16_chunks_the_first_block() {
        let g = Graph::build(&Model::vgg16(), &["fc8"]).unwrap();
        let p = plan(&g, 16, LAVAPIPE, None).unwrap();
        // 822 MB at full batch; 8 images (103 MB) per group fit the 128 MiB binding.
        assert_eq!(p.stages[0].chunk, 8);
        assert_eq!(p.chunks(0), vec![8, 8]);
        assert!(p.stages.len() == 2 && p.stages[1].chunk == 16);
        assert!(p.slots.iter().all(|&s| s <= LAVAPIPE.max_buffer));
        for (&(id, s), place) in &p.local {
            assert!(place.bytes <= LAVAPIPE.max_binding, "{id} in stage {s}");
        }
    }

    #[test]
    fn budget_forces_smaller_groups_or_fails() {
        let g = Graph::build(&Model::vgg16(), &["fc8"]).unwrap();
        let free = plan(&g, 8, LAVAPIPE, None).unwrap();
        let tight = plan(&g, 8, LAVAPIPE, Some(free.bytes() / 2)).unwrap();
        assert!(tight.bytes() <= free.bytes() / 2);
        assert!(tight.stages[0].chunk < 8);
        let e = plan(&g, 8, LAVAPIPE, Some(1 << 20))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("needs") && e.contains("1048576 bytes are available"),
            "{e}"
        );
    }
}
