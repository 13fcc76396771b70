//! Checking a pipeline's graph: unknown dependencies, duplicates and cycles, and its order.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{bail, Result};

use super::Step;

/// The steps in an order where every step comes after its dependencies (ties keep the
/// order they were added in). Fails naming the steps of a cycle, an unknown dependency
/// or a duplicate name.
pub(crate) fn order(pipeline: &str, steps: &[Step]) -> Result<Vec<usize>> {
    let mut index = BTreeMap::new();
    for (i, step) in steps.iter().enumerate() {
        if index.insert(step.name.as_str(), i).is_some() {
            bail!("pipeline `{pipeline}` has two steps named `{}`", step.name);
        }
    }
    for step in steps {
        for dep in &step.deps {
            if !index.contains_key(dep.as_str()) {
                bail!(
                    "step `{}` of pipeline `{pipeline}` depends on `{dep}`, which is not a step of it (steps: {})",
                    step.name,
                    steps.iter().map(|s| s.name.as_str()).collect::<Vec<_>>().join(", ")
                );
            }
        }
    }
    let mut done = BTreeSet::new();
    let mut out = Vec::with_capacity(steps.len());
    while out.len() < steps.len() {
        let next = steps.iter().enumerate().find(|(i, s)| {
            !done.contains(i) && s.deps.iter().all(|d| done.contains(&index[d.as_str()]))
        });
        match next {
            Some((i, _)) => {
                done.insert(i);
                out.push(i);
            }
            None => {
                let cycle = find_cycle(steps, &index, &done);
                bail!(
                    "pipeline `{pipeline}` has a dependency cycle: {}",
                    cycle.join(" -> ")
                );
            }
        }
    }
    Ok(out)
}

fn find_cycle(
    steps: &[Step],
    index: &BTreeMap<&str, usize>,
    done: &BTreeSet<usize>,
) -> Vec<String> {
    // Walk unfinished dependencies from any unfinished step until a step repeats.
    let start = (0..steps.len()).find(|i| !done.contains(i)).unwrap_or(0);
    let mut path = vec![start];
    loop {
        let current = *path.last().expect("non-empty path");
        let next = steps[current]
            .deps
            .iter()
            .map(|d| index[d.as_str()])
            .find(|i| !done.contains(i))
            .unwrap_or(start);
        if let Some(pos) = path.iter().position(|&p| p == next) {
            let mut names: Vec<String> =
                path[pos..].iter().map(|&i| steps[i].name.clone()).collect();
            names.push(steps[next].name.clone());
            return names;
        }
        path.push(next);
    }
}
