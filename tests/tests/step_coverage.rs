//! Every step kind has its plan-equals-execution test: each type that implements
//! `plan::Step` in the library's sources is named in a test of `tests/tests/steps_*.rs`
//! that calls `e2e::assert_plan_is_execution` (or `assert_plan_is_execution_on`). A new
//! step without one fails here.

use std::path::{Path, PathBuf};

/// The `.rs` files under `dir`, recursively, in a stable order.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            out.extend(rust_files(&path));
        } else if path.extension().is_some_and(|x| x == "rs") {
            out.push(path);
        }
    }
    out
}

/// The type named by an `impl Step for X` line (`impl plan::Step for X`, `impl
/// crate::plan::Step for X`, with or without generics), if the line is one.
fn step_impl(line: &str) -> Option<String> {
    let rest = line.trim_start().strip_prefix("impl")?;
    // `impl<T: Bound> Step for X<T>`: skip the generics.
    let rest = match rest.strip_prefix('<') {
        Some(generics) => {
            let mut depth = 1;
            let end = generics.char_indices().find_map(|(i, c)| {
                match c {
                    '<' => depth += 1,
                    '>' => depth -= 1,
                    _ => {}
                }
                (depth == 0).then_some(i)
            })?;
            &generics[end + 1..]
        }
        None => rest,
    };
    let rest = rest.trim_start();
    let rest = rest.strip_prefix("crate::").unwrap_or(rest);
    let rest = rest.strip_prefix("buildkit_lib::").unwrap_or(rest);
    let rest = rest.strip_prefix("plan::").unwrap_or(rest);
    let rest = rest.strip_prefix("Step for ")?;
    let name: String = rest
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect();
    (!name.is_empty()).then_some(name)
}

/// The types implementing `plan::Step` in `buildkit-lib/src`, with the file of each; a
/// unit test's own step (in a `tests.rs`, `*_tests.rs` or a `#[cfg(test)] mod`) is not
/// one of the library's.
fn step_types() -> Vec<(String, PathBuf)> {
    let src = e2e::repo_root().join("buildkit-lib/src");
    let mut out = Vec::new();
    for file in rust_files(&src) {
        let name = file.file_name().unwrap().to_string_lossy();
        if name == "tests.rs" || name.ends_with("_tests.rs") {
            continue;
        }
        let text = std::fs::read_to_string(&file).unwrap();
        let mut lines = text.lines().peekable();
        while let Some(line) = lines.next() {
            let test_module = line.trim() == "#[cfg(test)]"
                && lines.peek().is_some_and(|next| {
                    next.trim_start().starts_with("mod ") && next.trim_end().ends_with('{')
                });
            if test_module {
                // A test module is the end of its file, by the crate's convention.
                break;
            }
            if let Some(name) = step_impl(line) {
                out.push((name, file.strip_prefix(&src).unwrap().to_path_buf()));
            }
        }
    }
    out
}

/// The bodies of the `#[test]` functions of `tests/tests/steps_*.rs` that call
/// `assert_plan_is_execution` (or `assert_plan_is_execution_on`).
fn plan_tests() -> Vec<String> {
    let dir = e2e::repo_root().join("tests/tests");
    let mut out = Vec::new();
    for file in rust_files(&dir) {
        let name = file.file_name().unwrap().to_string_lossy().to_string();
        if !name.starts_with("steps_") {
            continue;
        }
        let text = std::fs::read_to_string(&file).unwrap();
        out.extend(
            text.split("#[test]")
                .skip(1)
                .filter(|body| body.contains("assert_plan_is_execution"))
                .map(str::to_string),
        );
    }
    out
}

/// Whether `text` has `word` as a whole identifier.
fn names(text: &str, word: &str) -> bool {
    let ident = |c: char| c.is_ascii_alphanumeric() || c == '_';
    text.match_indices(word).any(|(at, _)| {
        let before = text[..at].chars().next_back();
        let after = text[at + word.len()..].chars().next();
        !before.is_some_and(ident) && !after.is_some_and(ident)
    })
}

#[test]
fn the_scan_reads_every_shape_of_step_impl() {
    assert_eq!(step_impl("impl Step for Build {").as_deref(), Some("Build"));
    assert_eq!(
        step_impl("    impl plan::Step for Push {").as_deref(),
        Some("Push")
    );
    assert_eq!(
        step_impl("impl crate::plan::Step for Doctor {").as_deref(),
        Some("Doctor")
    );
    assert_eq!(
        step_impl("impl<S: Step> Step for Wrapped<S> {").as_deref(),
        Some("Wrapped")
    );
    assert_eq!(step_impl("impl Default for Build {"), None);
    assert_eq!(step_impl("/// impl Step for Doc {"), None);
    assert!(names("let step = Push::new(x);", "Push"));
    assert!(!names("let step = PushAll::new(x);", "Push"));
}

#[test]
fn every_step_kind_has_a_plan_equals_execution_test() {
    let steps = step_types();
    assert!(
        steps.len() >= 20,
        "the scan found too few steps, it must be broken: {steps:?}"
    );
    let tests = plan_tests();
    let missing: Vec<String> = steps
        .iter()
        .filter(|(name, _)| !tests.iter().any(|body| names(body, name)))
        .map(|(name, file)| format!("{name} (buildkit-lib/src/{})", file.display()))
        .collect();
    assert!(
        missing.is_empty(),
        "these steps have no test in tests/tests/steps_*.rs that names them and calls \
         `assert_plan_is_execution`: {}",
        missing.join(", ")
    );
}
