//! `cargo xtask msrv`: what can be checked of the declared minimum Rust version
//! (`rust-version` in the workspace's `Cargo.toml`) with the toolchains at hand.
//!
//! Three parts: every package of the dependency graph declares a `rust-version` no newer
//! than ours (from `cargo metadata`); every workspace member declares ours, so that
//! clippy's `incompatible_msrv` (denied in `[workspace.lints.clippy]`, run by CI's clippy
//! step) knows it; and, when a toolchain of exactly that version is installed,
//! `cargo +<it> check --workspace`. Without one, the output says that part was not
//! checked: newer toolchains accept language features an older compiler refuses.

use std::cmp::Ordering;
use std::path::Path;

use anyhow::{bail, Context, Result};
use buildkit_lib::{Cmd, Runner};
use serde_json::Value;

/// Runs the checks; `Ok(1)` when one fails (each failure named on stderr).
pub fn run(base: &Runner, root: &Path, dry_run: bool) -> Result<u8> {
    let runner = base.clone().dry_run(dry_run);
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let metadata = Cmd::new(&cargo)
        .args(["metadata", "--format-version", "1", "--locked"])
        .cwd(root)
        .read_only();
    let out = runner
        .capture(&metadata)
        .context("cannot read the dependency graph")?;
    let graph: Value = serde_json::from_str(&out.stdout)
        .context("`cargo metadata --format-version 1` printed something else than JSON")?;
    let mut report = check_graph(&graph)?;
    let lints = lint_problems(root, &graph)?;
    println!(
        "msrv: rust-version {}; {} dependencies declare one no newer, {} declare none ({})",
        report.ours,
        report.within,
        report.undeclared.len(),
        report.undeclared.join(", ")
    );
    if lints.is_empty() {
        println!(
            "msrv: std APIs newer than {} are denied by clippy's incompatible_msrv in every \
             workspace member (CI's clippy step)",
            report.ours
        );
    }
    report.offenders.extend(lints);
    let mut failed = false;
    for line in &report.offenders {
        eprintln!("error: {line}");
        failed = true;
    }

    let rustup = Cmd::new("rustup").args(["toolchain", "list"]).read_only();
    let listed = runner
        .capture(&rustup)
        .map(|o| o.stdout)
        .unwrap_or_default();
    match toolchain_for(&listed, &report.ours) {
        Some(toolchain) => {
            let target = std::env::var("CARGO_TARGET_DIR")
                .map(|d| Path::new(&d).join("msrv"))
                .unwrap_or_else(|_| root.join("target").join("msrv"));
            let check = Cmd::new("cargo")
                .arg(format!("+{toolchain}"))
                .args(["check", "--workspace", "--all-targets", "--locked"])
                .arg("--target-dir")
                .arg(target)
                .env_remove("RUSTUP_TOOLCHAIN")
                .env_remove("RUSTC")
                .env_remove("CARGO")
                .cwd(root);
            match runner.run(&check) {
                Err(_) => {
                    eprintln!(
                        "error: the workspace does not build with Rust {} ({toolchain}): fix \
                         the code, or raise rust-version in Cargo.toml (and say so in \
                         CHANGELOG.md)",
                        report.ours
                    );
                    failed = true;
                }
                Ok(_) if dry_run => {}
                Ok(_) => println!("msrv: `cargo +{toolchain} check --workspace` passed"),
            }
        }
        None => println!(
            "msrv: NOT CHECKED: compiling with Rust {} itself (no toolchain of that version \
             in `rustup toolchain list`); language features and compiler behaviour newer \
             than it are not caught",
            report.ours
        ),
    }
    Ok(u8::from(failed))
}

/// What the dependency graph says about rust-version.
#[derive(Debug, PartialEq)]
struct GraphReport {
    /// The workspace's rust-version.
    ours: String,
    /// Dependencies declaring one no newer than ours.
    within: usize,
    /// `name version` of dependencies declaring none.
    undeclared: Vec<String>,
    /// One sentence per package that fails: newer than ours, or a member without ours.
    offenders: Vec<String>,
}

/// Reads `cargo metadata` output: the members' rust-version (all the same, else an
/// error) and every other package's against it.
fn check_graph(graph: &Value) -> Result<GraphReport> {
    let members: Vec<&str> = graph["workspace_members"]
        .as_array()
        .context("`cargo metadata` output has no workspace_members")?
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let packages = graph["packages"]
        .as_array()
        .context("`cargo metadata` output has no packages")?;
    let is_member = |p: &Value| p["id"].as_str().is_some_and(|id| members.contains(&id));
    let declared = |p: &Value| p["rust_version"].as_str().map(str::to_string);
    let label = |p: &Value| {
        format!(
            "{} {}",
            p["name"].as_str().unwrap_or("?"),
            p["version"].as_str().unwrap_or("?")
        )
    };
    let mut versions: Vec<String> = packages
        .iter()
        .filter(|p| is_member(p))
        .filter_map(declared)
        .collect();
    versions.sort();
    versions.dedup();
    let ours = match versions.as_slice() {
        [one] => one.clone(),
        [] => bail!(
            "no workspace member declares rust-version: set it under [workspace.package] \
             and add `rust-version.workspace = true` to each member"
        ),
        many => bail!(
            "the workspace members declare different rust-versions ({}): inherit one with \
             `rust-version.workspace = true`",
            many.join(", ")
        ),
    };
    let mut report = GraphReport {
        ours: ours.clone(),
        within: 0,
        undeclared: Vec::new(),
        offenders: Vec::new(),
    };
    for p in packages {
        match (is_member(p), declared(p)) {
            (true, None) => report.offenders.push(format!(
                "workspace member {} declares no rust-version, so clippy cannot check it \
                 against {ours}: add `rust-version.workspace = true` to its Cargo.toml",
                label(p)
            )),
            (true, Some(_)) => {}
            (false, None) => report.undeclared.push(label(p)),
            (false, Some(v)) if compare(&v, &ours) == Ordering::Greater => {
                report.offenders.push(format!(
                    "{} needs Rust {v}, newer than the workspace's {ours}: pin an older \
                     release (`cargo update -p {} --precise <version>`) or raise \
                     rust-version",
                    label(p),
                    p["name"].as_str().unwrap_or("?")
                ))
            }
            (false, Some(_)) => report.within += 1,
        }
    }
    Ok(report)
}

/// Where `incompatible_msrv` is not denied: the root manifest must deny it under
/// `[workspace.lints.clippy]`, and each member must take the workspace's lints.
fn lint_problems(root: &Path, graph: &Value) -> Result<Vec<String>> {
    let read = |path: &Path| {
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))
    };
    let mut manifests = vec![(root.join("Cargo.toml"), true)];
    let members: Vec<&str> = graph["workspace_members"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    for p in graph["packages"].as_array().into_iter().flatten() {
        if p["id"].as_str().is_some_and(|id| members.contains(&id)) {
            if let Some(path) = p["manifest_path"].as_str() {
                manifests.push((path.into(), false));
            }
        }
    }
    let mut problems = Vec::new();
    for (path, is_root) in manifests {
        let text = read(&path)?;
        if let Some(problem) = lint_problem(&text, is_root) {
            problems.push(format!("{}: {problem}", path.display()));
        }
    }
    Ok(problems)
}

/// What a manifest lacks for `incompatible_msrv` to be denied (a line-based reading:
/// the workspace's own manifests are written that way).
fn lint_problem(manifest: &str, is_root: bool) -> Option<&'static str> {
    let mut table = "";
    let mut found = false;
    for line in manifest.lines().map(str::trim) {
        if line.starts_with('[') {
            table = line;
            continue;
        }
        let setting: String = line.chars().filter(|c| !c.is_whitespace()).collect();
        found |= if is_root {
            table == "[workspace.lints.clippy]" && setting == "incompatible_msrv=\"deny\""
        } else {
            table == "[lints]" && setting == "workspace=true"
        };
    }
    match (found, is_root) {
        (true, _) => None,
        (false, true) => Some(
            "clippy's incompatible_msrv is not denied: add `incompatible_msrv = \"deny\"` \
             under [workspace.lints.clippy]",
        ),
        (false, false) => Some(
            "this member does not take the workspace's lints (incompatible_msrv): add \
             `[lints]` with `workspace = true`",
        ),
    }
}

/// Compares `1.85`, `1.85.0`, `1.71.1`: missing parts count as 0.
fn compare(a: &str, b: &str) -> Ordering {
    let parts = |v: &str| -> Vec<u64> {
        let mut out: Vec<u64> = v.split('.').map(|n| n.parse().unwrap_or(0)).collect();
        out.resize(3, 0);
        out
    };
    parts(a).cmp(&parts(b))
}

/// The installed toolchain of exactly version `ours` (`1.85` matches `1.85-<host>`,
/// `1.85.0-<host>` and `1.85.0`), from `rustup toolchain list` output.
fn toolchain_for(listed: &str, ours: &str) -> Option<String> {
    listed
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .find(|name| {
            let version = name.split('-').next().unwrap_or("");
            version.starts_with(|c: char| c.is_ascii_digit())
                && compare(version, ours) == Ordering::Equal
        })
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn package(id: &str, name: &str, rust_version: Option<&str>) -> Value {
        serde_json::json!({"id": id, "name": name, "version": "1.0.0", "rust_version": rust_version})
    }

    #[test]
    fn dependencies_newer_than_ours_and_members_without_it_are_named() {
        let graph = serde_json::json!({
            "workspace_members": ["lib-id", "xtask-id"],
            "packages": [
                package("lib-id", "lib", Some("1.85")),
                package("xtask-id", "xtask", Some("1.85")),
                package("a", "old", Some("1.63")),
                package("b", "same", Some("1.85.0")),
                package("c", "newer", Some("1.86")),
                package("d", "silent", None),
            ]
        });
        let report = check_graph(&graph).unwrap();
        assert_eq!(report.ours, "1.85");
        assert_eq!(report.within, 2);
        assert_eq!(report.undeclared, ["silent 1.0.0"]);
        assert_eq!(report.offenders.len(), 1, "{:?}", report.offenders);
        assert!(report.offenders[0]
            .starts_with("newer 1.0.0 needs Rust 1.86, newer than the workspace's 1.85"));

        let mut graph = graph;
        graph["packages"][1]["rust_version"] = Value::Null;
        let report = check_graph(&graph).unwrap();
        assert!(report
            .offenders
            .iter()
            .any(|o| o.starts_with("workspace member xtask 1.0.0 declares no rust-version")));

        graph["packages"][1]["rust_version"] = "1.80".into();
        let e = check_graph(&graph).unwrap_err().to_string();
        assert!(e.contains("different rust-versions (1.80, 1.85)"), "{e}");
    }

    #[test]
    fn manifests_without_the_denied_lint_are_named() {
        let root = "[workspace]\n[workspace.lints.clippy]\nincompatible_msrv = \"deny\"\n";
        assert_eq!(lint_problem(root, true), None);
        let warned = root.replace("deny", "warn");
        assert!(lint_problem(&warned, true).unwrap().contains("not denied"));
        let elsewhere = "[lints.clippy]\nincompatible_msrv = \"deny\"\n";
        assert!(lint_problem(elsewhere, true).is_some());
        assert_eq!(
            lint_problem("[package]\n[lints]\nworkspace = true\n", false),
            None
        );
        let without = "[package]\nname = \"x\"\n[dependencies]\nworkspace = true\n";
        assert!(lint_problem(without, false)
            .unwrap()
            .contains("does not take the workspace's lints"));
    }

    #[test]
    fn versions_compare_by_number_and_toolchains_by_exact_version() {
        assert_eq!(compare("1.85", "1.85.0"), Ordering::Equal);
        assert_eq!(compare("1.9", "1.85"), Ordering::Less);
        assert_eq!(compare("1.85.1", "1.85"), Ordering::Greater);
        let listed = "stable-x86_64-unknown-linux-gnu (active, default)\n\
                      nightly-x86_64-unknown-linux-gnu\n\
                      1.95.0-x86_64-unknown-linux-gnu\n";
        assert_eq!(toolchain_for(listed, "1.85"), None);
        let listed = format!("{listed}1.85.0-x86_64-unknown-linux-gnu\n");
        assert_eq!(
            toolchain_for(&listed, "1.85").as_deref(),
            Some("1.85.0-x86_64-unknown-linux-gnu")
        );
        assert_eq!(
            toolchain_for("1.8-x86_64-unknown-linux-gnu\n", "1.85"),
            None
        );
    }
}
