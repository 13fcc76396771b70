//! Where the fixtures' Python lives, for the format steps.

use std::path::{Path, PathBuf};

/// The Python source folders of the fixtures, relative to the repository root.
pub fn python_paths(root: &Path) -> Vec<PathBuf> {
    ["fixtures/webapp/src", "fixtures/desktop/src"]
        .into_iter()
        .map(PathBuf::from)
        .filter(|p| root.join(p).exists())
        .collect()
}

/// Adds the `format` step: black and isort (pinned) over `sources`, both answering even
/// when black fails, up to date while the sources and the pins are unchanged.
pub fn format_step<'p>(
    pipeline: &'p mut buildkit_lib::pipeline::Pipeline,
    tools: &buildkit_lib::python::ToolEnv,
    root: &Path,
    sources: Vec<PathBuf>,
) -> &'p mut buildkit_lib::pipeline::Step {
    use buildkit_lib::pipeline::Inputs;
    use buildkit_lib::plan::Step;
    use buildkit_lib::python::{CheckAll, Format};
    // The interpreter and every pin: the check runs again when one changes.
    let mut inputs = Inputs::new().value("tools", tools.to_string());
    for path in &sources {
        inputs = inputs.file(root.join(path));
    }
    let black = Format::black(sources.clone())
        .cwd(root)
        .tools(tools.clone());
    let isort = Format::isort(sources).cwd(root).tools(tools.clone());
    let checks = CheckAll::new(black, isort);
    pipeline
        .step("format", move |cx| checks.run(&cx.runner))
        .inputs(inputs)
}
