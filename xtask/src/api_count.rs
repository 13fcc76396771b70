//! `cargo xtask api-count`: the size of buildkit-lib's public API, counted the same way
//! on any checkout, from rustdoc's JSON output (nightly only: `-Z unstable-options
//! --output-format json`).
//!
//! What counts is what a user can name: the walk starts at the crate root and goes
//! through public modules and public `use` re-exports (globs included); each item is
//! counted once however many paths reach it, and the items that more than one path
//! reaches are counted apart. Under a type it counts its public fields (every field of an
//! enum's variants), its variants, and the public functions and constants of its inherent
//! impls; trait impls and the items of traits are not counted (they come with the type or
//! the trait).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use buildkit_lib::{Cmd, Runner};
use serde_json::Value;

use crate::flags::ApiCount;

/// Builds the JSON (unless `--json` names one) and prints the counts.
pub fn run(base: &Runner, root: &Path, flags: &ApiCount) -> Result<u8> {
    let json = match &flags.json {
        Some(file) => file.clone(),
        None => {
            let manifest = match &flags.path {
                Some(p) if p.is_dir() => p.join("Cargo.toml"),
                Some(p) => p.clone(),
                None => root.join("Cargo.toml"),
            };
            let target = std::env::var("CARGO_TARGET_DIR")
                .map(|d| PathBuf::from(d).join("api-count"))
                .unwrap_or_else(|_| root.join("target").join("api-count"));
            let cmd = Cmd::new("cargo")
                .args(["+nightly", "rustdoc", "-p", "buildkit-lib", "--lib"])
                .arg("--manifest-path")
                .arg(&manifest)
                .arg("--target-dir")
                .arg(&target)
                .args(["--", "-Z", "unstable-options", "--output-format", "json"])
                .env_remove("RUSTUP_TOOLCHAIN")
                .env_remove("RUSTC")
                .env_remove("RUSTDOC")
                .env_remove("CARGO");
            let runner = base.clone().dry_run(flags.dry_run);
            runner.run(&cmd).with_context(|| {
                format!(
                    "cannot build rustdoc's JSON of buildkit-lib from {}; it needs the \
                     nightly toolchain (`rustup toolchain install nightly`)",
                    manifest.display()
                )
            })?;
            if flags.dry_run {
                return Ok(0);
            }
            target.join("doc").join("buildkit_lib.json")
        }
    };
    let text = std::fs::read_to_string(&json)
        .with_context(|| format!("cannot read rustdoc JSON {}", json.display()))?;
    let doc: Value =
        serde_json::from_str(&text).with_context(|| format!("{} is not JSON", json.display()))?;
    let count = count(&doc).with_context(|| format!("cannot walk {}", json.display()))?;
    println!(
        "public API of {} (rustdoc JSON format {}), reachable from the crate root:",
        count.root, doc["format_version"]
    );
    for (kind, n) in &count.kinds {
        println!("  {kind:<14} {n:>5}");
    }
    println!("  {:<14} {:>5}", "total", count.total());
    println!(
        "  items reachable at more than one path: {}",
        count.multi_path.len()
    );
    if flags.by_module {
        let mut modules: Vec<_> = count.by_module.iter().collect();
        modules.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        println!("  by module (a type's members counted with it):");
        for (module, n) in modules {
            println!("    {n:>5}  {module}");
        }
    }
    if flags.list {
        let mut listed = count.listed.clone();
        listed.sort_by(|a, b| a.1.cmp(&b.1));
        for (kind, path) in listed {
            println!("    {kind:<12} {path}");
        }
    }
    if flags.paths {
        for paths in count.multi_path.values() {
            println!(
                "    {}",
                paths.iter().cloned().collect::<Vec<_>>().join("  =  ")
            );
        }
    }
    Ok(0)
}

/// The counts of one crate's public API.
#[derive(Debug, Default)]
struct Count {
    /// The crate's name.
    root: String,
    /// Distinct items by kind.
    kinds: BTreeMap<&'static str, usize>,
    /// The paths of each item (modules and module-level items) reached at several.
    multi_path: BTreeMap<String, BTreeSet<String>>,
    /// Items by the module they are first reached in (a type's members with the type).
    by_module: BTreeMap<String, usize>,
    /// Every item counted: its kind and the first path it was reached at.
    listed: Vec<(&'static str, String)>,
}

impl Count {
    fn total(&self) -> usize {
        self.kinds.values().sum()
    }
}

/// Walks rustdoc JSON from its root module.
fn count(doc: &Value) -> Result<Count> {
    let index = doc["index"]
        .as_object()
        .context("no `index` object: not rustdoc JSON")?;
    let root = key(&doc["root"]).context("no `root` id: not rustdoc JSON")?;
    let Some(root_item) = index.get(&root) else {
        bail!("the root id {root} is not in the index");
    };
    let mut walk = Walk {
        index,
        paths: BTreeMap::new(),
        counted: BTreeSet::new(),
        kinds: BTreeMap::new(),
        route: Vec::new(),
        module: String::new(),
        by_module: BTreeMap::new(),
        listed: Vec::new(),
    };
    let name = root_item["name"].as_str().unwrap_or("crate").to_string();
    walk.reach(&root, &name);
    Ok(Count {
        root: name,
        kinds: walk.kinds,
        multi_path: walk
            .paths
            .into_iter()
            .filter(|(_, p)| p.len() > 1)
            .collect(),
        by_module: walk.by_module,
        listed: walk.listed,
    })
}

/// An id as the index's key (ids are numbers in recent formats, strings in older ones).
fn key(id: &Value) -> Option<String> {
    match id {
        Value::Number(n) => Some(n.to_string()),
        Value::String(s) => Some(s.clone()),
        _ => None,
    }
}

/// The kind of an item: the single key of its `inner` object.
fn kind_of(item: &Value) -> &str {
    item["inner"]
        .as_object()
        .and_then(|o| o.keys().next())
        .map(String::as_str)
        .unwrap_or("")
}

/// The name the counts print for an item kind; `None` for kinds not counted.
fn counted_kind(kind: &str) -> Option<&'static str> {
    Some(match kind {
        "module" => "modules",
        "struct" => "structs",
        "union" => "unions",
        "enum" => "enums",
        "variant" => "variants",
        "struct_field" => "fields",
        "function" => "functions",
        "trait" => "traits",
        "trait_alias" => "trait aliases",
        "constant" => "consts",
        "static" => "statics",
        "type_alias" => "type aliases",
        "macro" | "proc_macro" => "macros",
        _ => return None,
    })
}

struct Walk<'a> {
    index: &'a serde_json::Map<String, Value>,
    /// Every path of each module-level item reached.
    paths: BTreeMap<String, BTreeSet<String>>,
    /// Items counted already.
    counted: BTreeSet<String>,
    kinds: BTreeMap<&'static str, usize>,
    /// The modules being walked (a re-export of an enclosing module is not walked again).
    route: Vec<String>,
    /// The module path the item being counted is reached in.
    module: String,
    /// Items counted, by that module.
    by_module: BTreeMap<String, usize>,
    /// Every item counted, with its kind and path.
    listed: Vec<(&'static str, String)>,
}

impl Walk<'_> {
    /// Item `id` is public at `path`: count it (once) with its members, and walk it when
    /// it is a module.
    fn reach(&mut self, id: &str, path: &str) {
        let Some(item) = self.index.get(id) else {
            return; // another crate's item, re-exported: not this crate's API
        };
        if item["crate_id"].as_u64().unwrap_or(0) != 0 {
            return;
        }
        self.paths
            .entry(id.to_string())
            .or_default()
            .insert(path.to_string());
        let kind = kind_of(item);
        self.module = match kind {
            "module" => path.to_string(),
            _ => path.rsplit_once("::").map_or(path, |(m, _)| m).to_string(),
        };
        if self.count(id, kind, path) {
            self.members(item, kind, path);
        }
        if kind == "module" && !self.route.iter().any(|r| r == id) {
            self.route.push(id.to_string());
            self.module_items(item, path);
            self.route.pop();
        }
    }

    /// Counts `id`, reached at `path`, under `kind` the first time; true then.
    fn count(&mut self, id: &str, kind: &str, path: &str) -> bool {
        let Some(name) = counted_kind(kind) else {
            return false;
        };
        self.count_as(id, name, path)
    }

    /// The path of member `id` of the item at `path`.
    fn member_path(&self, id: &str, path: &str) -> String {
        let name = self.index.get(id).and_then(|m| m["name"].as_str());
        format!("{path}::{}", name.unwrap_or("_"))
    }

    /// The public items of a module (or what a glob re-export brings in), at `path`.
    fn module_items(&mut self, module: &Value, path: &str) {
        let items = module["inner"]["module"]["items"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        for child_id in items.iter().filter_map(key) {
            let Some(child) = self.index.get(&child_id) else {
                continue;
            };
            if child["visibility"] != "public" {
                continue;
            }
            if kind_of(child) == "use" {
                let import = &child["inner"]["use"];
                let Some(target) = key(&import["id"]) else {
                    continue;
                };
                if import["is_glob"] == true {
                    self.glob(&target, path);
                } else {
                    let name = import["name"].as_str().unwrap_or("_");
                    self.reach(&target, &format!("{path}::{name}"));
                }
            } else if let Some(name) = child["name"].as_str() {
                self.reach(&child_id, &format!("{path}::{name}"));
            }
        }
    }

    /// `pub use target::*` inside the module at `path`.
    fn glob(&mut self, target: &str, path: &str) {
        let Some(item) = self.index.get(target) else {
            return;
        };
        match kind_of(item) {
            "module" if !self.route.iter().any(|r| r == target) => {
                self.route.push(target.to_string());
                self.module_items(item, path);
                self.route.pop();
            }
            "enum" => {
                for variant in ids(&item["inner"]["enum"]["variants"]) {
                    let name = self.index[&variant]["name"].as_str().unwrap_or("_");
                    self.reach(&variant, &format!("{path}::{name}"));
                }
            }
            _ => {}
        }
    }

    /// A type's public fields, its variants (with their fields) and the public functions
    /// and constants of its inherent impls.
    fn members(&mut self, item: &Value, kind: &str, path: &str) {
        let inner = &item["inner"][kind];
        match kind {
            "struct" | "union" => {
                let fields = match &inner["kind"] {
                    Value::Object(k) if k.contains_key("plain") => ids(&k["plain"]["fields"]),
                    Value::Object(k) if k.contains_key("tuple") => ids(&k["tuple"]),
                    _ => ids(&inner["fields"]),
                };
                for field in fields {
                    if self.index.get(&field).map(|f| &f["visibility"])
                        == Some(&Value::from("public"))
                    {
                        let at = self.member_path(&field, path);
                        self.count(&field, "struct_field", &at);
                    }
                }
            }
            "enum" => {
                for variant in ids(&inner["variants"]) {
                    let at = self.member_path(&variant, path);
                    if !self.count(&variant, "variant", &at) {
                        continue;
                    }
                    let shape = &self.index[&variant]["inner"]["variant"]["kind"];
                    let fields = match shape {
                        Value::Object(k) if k.contains_key("struct") => ids(&k["struct"]["fields"]),
                        Value::Object(k) if k.contains_key("tuple") => ids(&k["tuple"]),
                        _ => Vec::new(),
                    };
                    for field in fields {
                        let field_at = self.member_path(&field, &at);
                        self.count(&field, "struct_field", &field_at);
                    }
                }
            }
            _ => return,
        }
        for impl_id in ids(&inner["impls"]) {
            let Some(imp) = self.index.get(&impl_id) else {
                continue;
            };
            if !imp["inner"]["impl"]["trait"].is_null() {
                continue;
            }
            for member in ids(&imp["inner"]["impl"]["items"]) {
                let Some(m) = self.index.get(&member) else {
                    continue;
                };
                if m["visibility"] == "public" {
                    let at = self.member_path(&member, path);
                    match kind_of(m) {
                        "function" => self.count_as(&member, "methods", &at),
                        "assoc_const" => self.count_as(&member, "assoc consts", &at),
                        _ => false,
                    };
                }
            }
        }
    }

    /// Counts `id`, reached at `path`, under the printed kind `name` the first time;
    /// true then.
    fn count_as(&mut self, id: &str, name: &'static str, path: &str) -> bool {
        if !self.counted.insert(id.to_string()) {
            return false;
        }
        *self.kinds.entry(name).or_default() += 1;
        *self.by_module.entry(self.module.clone()).or_default() += 1;
        self.listed.push((name, path.to_string()));
        true
    }
}

/// The ids of a JSON array (`null` entries, stripped fields, left out).
fn ids(list: &Value) -> Vec<String> {
    list.as_array()
        .map(|a| a.iter().filter_map(key).collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn item(id: u64, name: Option<&str>, visibility: &str, inner: Value) -> (String, Value) {
        (
            id.to_string(),
            json!({"id": id, "crate_id": 0, "name": name, "visibility": visibility, "inner": inner}),
        )
    }

    /// A crate with a public module re-exporting items of a private one, a glob, a
    /// re-export of an enclosing module, and a type with every kind of member.
    fn doc() -> Value {
        let module = |items: &[u64]| json!({"module": {"is_crate": false, "items": items}});
        let index: serde_json::Map<String, Value> = [
            item(0, Some("krate"), "public", module(&[1, 20, 30])),
            item(1, Some("api"), "public", module(&[2, 3, 4, 5, 6])),
            // `pub use inner::Thing;` (inner is private, so only its items are listed)
            item(
                2,
                None,
                "public",
                json!({"use": {"name": "Thing", "id": 10, "is_glob": false}}),
            ),
            // `pub use inner::Thing as Alias;`: a second path to the same item
            item(
                3,
                None,
                "public",
                json!({"use": {"name": "Alias", "id": 10, "is_glob": false}}),
            ),
            // `pub use crate::api as again;`: cycles back, must terminate
            item(
                4,
                None,
                "public",
                json!({"use": {"name": "again", "id": 1, "is_glob": false}}),
            ),
            // a private function: not counted
            item(5, Some("hidden"), "crate", json!({"function": {}})),
            // `pub use other_crate::X;`: not in the index, not counted
            item(
                6,
                None,
                "public",
                json!({"use": {"name": "X", "id": 999, "is_glob": false}}),
            ),
            item(
                10,
                Some("Thing"),
                "public",
                json!({"struct": {
                "kind": {"plain": {"fields": [11, 12], "has_stripped_fields": true}},
                "impls": [13, 14]}}),
            ),
            item(11, Some("name"), "public", json!({"struct_field": {}})),
            item(12, Some("secret"), "crate", json!({"struct_field": {}})),
            item(
                13,
                None,
                "default",
                json!({"impl": {"trait": null, "items": [15, 16, 17]}}),
            ),
            item(
                14,
                None,
                "default",
                json!({"impl": {"trait": {"path": "Clone"}, "items": [18]}}),
            ),
            item(15, Some("new"), "public", json!({"function": {}})),
            item(16, Some("helper"), "crate", json!({"function": {}})),
            item(17, Some("LIMIT"), "public", json!({"assoc_const": {}})),
            item(18, Some("clone"), "default", json!({"function": {}})),
            // `pub use shapes::*;` at the root
            item(
                20,
                None,
                "public",
                json!({"use": {"name": "shapes", "id": 21, "is_glob": true}}),
            ),
            item(21, Some("shapes"), "crate", module(&[22])),
            item(
                22,
                Some("Shape"),
                "public",
                json!({"enum": {"variants": [23, 24], "impls": []}}),
            ),
            item(
                23,
                Some("Dot"),
                "default",
                json!({"variant": {"kind": "plain"}}),
            ),
            item(
                24,
                Some("Box"),
                "default",
                json!({"variant": {"kind": {"struct": {"fields": [25]}}}}),
            ),
            item(25, Some("side"), "default", json!({"struct_field": {}})),
            item(30, Some("VERSION"), "public", json!({"constant": {}})),
        ]
        .into_iter()
        .collect();
        json!({"root": 0, "format_version": 57, "index": index})
    }

    #[test]
    fn reachable_items_are_counted_once_by_kind() {
        let count = count(&doc()).unwrap();
        let expected: BTreeMap<&str, usize> = [
            ("modules", 2),
            ("structs", 1),
            ("fields", 2),
            ("methods", 1),
            ("assoc consts", 1),
            ("enums", 1),
            ("variants", 2),
            ("consts", 1),
        ]
        .into_iter()
        .collect();
        assert_eq!(count.kinds, expected);
        assert_eq!(count.total(), 11);
        assert_eq!(count.root, "krate");
        let multi: Vec<Vec<&str>> = count
            .multi_path
            .values()
            .map(|p| p.iter().map(String::as_str).collect())
            .collect();
        assert_eq!(
            multi,
            [
                vec!["krate::api", "krate::api::again"],
                vec!["krate::api::Alias", "krate::api::Thing"],
            ]
        );
    }

    #[test]
    fn not_rustdoc_json_is_an_error() {
        let e = count(&json!({"index": {}})).unwrap_err().to_string();
        assert!(e.contains("no `root` id"), "{e}");
        let e = count(&json!({"root": 1})).unwrap_err().to_string();
        assert!(e.contains("no `index` object"), "{e}");
    }
}
