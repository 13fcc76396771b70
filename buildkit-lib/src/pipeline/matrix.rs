//! Build matrices: axes of values expanded into one step per combination.

use std::collections::BTreeMap;

/// Axes of values (platforms x build type x Python version, say), expanded in order.
#[derive(Debug, Clone, Default)]
pub struct Matrix {
    axes: Vec<(String, Vec<String>)>,
}

impl Matrix {
    /// An empty matrix (one empty combination).
    pub fn new() -> Matrix {
        Matrix::default()
    }

    /// Adds an axis.
    pub fn axis<I, S>(mut self, name: impl Into<String>, values: I) -> Matrix
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.axes
            .push((name.into(), values.into_iter().map(Into::into).collect()));
        self
    }

    /// Every combination, first axis slowest.
    pub fn combinations(&self) -> Vec<BTreeMap<String, String>> {
        let mut out = vec![Vec::<(String, String)>::new()];
        for (name, values) in &self.axes {
            let mut next = Vec::new();
            for partial in &out {
                for value in values {
                    let mut combo = partial.clone();
                    combo.push((name.clone(), value.clone()));
                    next.push(combo);
                }
            }
            out = next;
        }
        out.into_iter().map(|c| c.into_iter().collect()).collect()
    }

    /// The values of a combination in axis order, joined by commas.
    pub fn label(&self, combo: &BTreeMap<String, String>) -> String {
        self.axes
            .iter()
            .filter_map(|(name, _)| combo.get(name).cloned())
            .collect::<Vec<_>>()
            .join(",")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expands_in_axis_order() {
        let m = Matrix::new()
            .axis("platform", ["linux/amd64", "linux/arm64"])
            .axis("build", ["development", "production"])
            .axis("python", ["3.12"]);
        let combos = m.combinations();
        assert_eq!(combos.len(), 4);
        assert_eq!(m.label(&combos[0]), "linux/amd64,development,3.12");
        assert_eq!(m.label(&combos[3]), "linux/arm64,production,3.12");
    }
}
