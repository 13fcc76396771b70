//! The build context audit against the real engine: for generated trees with tricky
//! `.dockerignore` files, `FROM scratch` + `COPY . /ctx/` is built and exported, and the
//! exported files and directories must be exactly the ones the audit lists.

use std::path::{Path, PathBuf};

use buildkit_lib::units::human_bytes;
use buildkit_lib::validate;
use buildkit_lib::{Cmd, Runner};

const DOCKERFILE: &str = "FROM scratch\nCOPY . /ctx/\n";

/// Writes `files` (path, content) under `root`; a path ending in `/` is an empty directory,
/// `name -> target` a symlink.
fn tree(root: &Path, files: &[&str]) {
    for spec in files {
        if let Some((link, target)) = spec.split_once(" -> ") {
            let path = root.join(link);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::os::unix::fs::symlink(target, path).unwrap();
        } else if let Some(dir) = spec.strip_suffix('/') {
            std::fs::create_dir_all(root.join(dir)).unwrap();
        } else {
            let path = root.join(spec);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, format!("content of {spec}\n")).unwrap();
        }
    }
}

/// Files (with symlinks) and directories under `dir`, relative, sorted.
fn listing(dir: &Path) -> (Vec<String>, Vec<String>) {
    fn walk(base: &Path, dir: &Path, files: &mut Vec<String>, dirs: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let entry = entry.unwrap();
            let path = entry.path();
            let rel = path
                .strip_prefix(base)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            if entry.file_type().unwrap().is_dir() {
                dirs.push(rel);
                walk(base, &path, files, dirs);
            } else {
                files.push(rel);
            }
        }
    }
    let (mut files, mut dirs) = (Vec::new(), Vec::new());
    if dir.exists() {
        walk(dir, dir, &mut files, &mut dirs);
    }
    files.sort();
    dirs.sort();
    (files, dirs)
}

/// Builds `context` with `dockerfile` and returns what reached `/ctx` in the image.
fn engine_listing(
    runner: &Runner,
    context: &Path,
    dockerfile: &Path,
) -> (Vec<String>, Vec<String>) {
    let out = tempfile::tempdir().unwrap();
    let dest = out.path().join("export");
    runner
        .run(
            &Cmd::new("docker")
                .args(["buildx", "build", "--progress=plain", "--output"])
                .arg(format!("type=local,dest={}", dest.display()))
                .arg("-f")
                .arg(dockerfile)
                .arg(context),
        )
        .unwrap();
    listing(&dest.join("ctx"))
}

struct Case {
    name: &'static str,
    files: &'static [&'static str],
    dockerignore: Option<&'static str>,
    /// The Dockerfile's path inside the context, or `None` for one outside it.
    dockerfile_inside: Option<&'static str>,
    /// A `<Dockerfile>.dockerignore` beside the Dockerfile.
    specific_ignore: Option<&'static str>,
}

fn check(runner: &Runner, case: &Case) {
    let dir = tempfile::tempdir().unwrap();
    let ctx = dir.path().join("ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    tree(&ctx, case.files);
    if let Some(text) = case.dockerignore {
        std::fs::write(ctx.join(".dockerignore"), text).unwrap();
    }
    let dockerfile: PathBuf = match case.dockerfile_inside {
        Some(rel) => ctx.join(rel),
        None => dir.path().join("outside").join("Dockerfile"),
    };
    std::fs::create_dir_all(dockerfile.parent().unwrap()).unwrap();
    std::fs::write(&dockerfile, DOCKERFILE).unwrap();
    if let Some(text) = case.specific_ignore {
        std::fs::write(format!("{}.dockerignore", dockerfile.display()), text).unwrap();
    }
    let audit = validate::audit(&ctx, Some(&dockerfile)).unwrap();
    let (files, dirs) = engine_listing(runner, &ctx, &dockerfile);
    assert_eq!(
        audit.file_paths(),
        files.iter().map(String::as_str).collect::<Vec<_>>(),
        "files of case `{}`",
        case.name
    );
    assert_eq!(
        audit.dir_paths(),
        dirs.iter().map(String::as_str).collect::<Vec<_>>(),
        "directories of case `{}`",
        case.name
    );
}

#[test]
fn audit_matches_what_the_engine_receives() {
    let runner = e2e::engine();
    let cases = [
        Case {
            name: "exceptions in order",
            files: &[
                "a.md",
                "README.md",
                "README-secret.md",
                "README-public.md",
                "docs/x.md",
                "src/main.py",
                "src/util.pyc",
                "top.pyc",
                "src/__pycache__/m.cpython-311.pyc",
                "deep/a/b/__pycache__/n.pyc",
                "deep/a/b/keep.py",
            ],
            dockerignore: Some(
                "# docs\n*.md\n!README*.md\nREADME-secret.md\n**/__pycache__\n*.pyc\n",
            ),
            dockerfile_inside: Some("Dockerfile"),
            specific_ignore: None,
        },
        Case {
            name: "slashes and an excluded dir with an exception inside",
            files: &[
                "build/a.o",
                "build/keep/x.txt",
                "build/keep/tmp/t.txt",
                "build/keepnot/y.txt",
                "node_modules/m/index.js",
                "sub/node_modules/y.js",
                "data/a.bin",
                "data/b.txt",
                "data/sub/c.bin",
                "empty/",
            ],
            dockerignore: Some(
                "/build/\n!build/keep/\nbuild/keep/tmp\n  node_modules/  \n/data/*.bin\n",
            ),
            dockerfile_inside: None,
            specific_ignore: None,
        },
        Case {
            name: "dotfiles, and the Dockerfile and .dockerignore excluded",
            files: &[
                ".env",
                ".env.production",
                ".git/HEAD",
                ".git/refs/heads/main",
                ".gitignore",
                ".hidden/x",
                "app.py",
                "conf/.npmrc",
            ],
            dockerignore: Some(".*\n!.gitignore\nDockerfile\n"),
            dockerfile_inside: Some("Dockerfile"),
            specific_ignore: None,
        },
        Case {
            name: "dotfiles kept, Dockerfile kept",
            files: &[".env", ".git/HEAD", "app.py", "key.pem"],
            dockerignore: Some("*.log\n"),
            dockerfile_inside: Some("Dockerfile"),
            specific_ignore: None,
        },
        Case {
            name: "everything excluded but wildcard exceptions",
            files: &[
                "a.py",
                "b.txt",
                "pkg/sub/c.py",
                "pkg/sub/d.txt",
                "pkg/empty/",
                "keep/any.bin",
                "keep/deeper/z.txt",
                "other/q.txt",
            ],
            dockerignore: Some("**\n!**/*.py\n!keep/**\n"),
            dockerfile_inside: None,
            specific_ignore: None,
        },
        Case {
            name: "classes, question marks, escapes, one-level stars",
            files: &[
                "file1.txt",
                "filex.txt",
                "log1",
                "log12",
                "x/temp-keep",
                "x/temporary",
                "x/y/temp.txt",
                "temp.txt",
                "a*b",
                "axb",
            ],
            dockerignore: Some("file[0-9].txt\nlog?\n*/temp*\n!x/temp-keep\na\\*b\n"),
            dockerfile_inside: None,
            specific_ignore: None,
        },
        Case {
            name: "Dockerfile-specific ignore file wins",
            files: &["a.txt", "b.txt", "docker/"],
            dockerignore: Some("a.txt\n"),
            dockerfile_inside: Some("docker/app.Dockerfile"),
            specific_ignore: Some("b.txt\ndocker\n"),
        },
        Case {
            name: "symlinks and empty directories, no ignore file",
            files: &[
                "real.txt",
                "link.txt -> real.txt",
                "dangling -> nowhere",
                "d/e/f/",
                "dirlink -> d",
            ],
            dockerignore: None,
            dockerfile_inside: None,
            specific_ignore: None,
        },
        Case {
            name: "parent match and a negated dir re-excluded",
            files: &[
                "src/a/b/c.txt",
                "src/a/keep/k.txt",
                "src/z.txt",
                "srcx/y.txt",
            ],
            dockerignore: Some("src/a\n!src/a/keep\nsrc*\n!src\n"),
            dockerfile_inside: None,
            specific_ignore: None,
        },
        Case {
            name: "patternmatcher quirks: `**` without slash, prefix `**`, cleaned paths",
            files: &[
                "a/x/b",
                "axb",
                "ab",
                "foobar/x",
                "foo",
                "lib/z.txt",
                "src/lib/y.txt",
                "# spaced",
            ],
            dockerignore: Some("a**b\nfoo**\n./src/../lib\n # spaced\n"),
            dockerfile_inside: None,
            specific_ignore: None,
        },
        Case {
            name: "a wildcard exception reaches into an excluded directory",
            files: &[
                "node_modules/a/keep.js",
                "node_modules/a/drop.js",
                "node_modules/b/c/keep.js",
                "node_modules/empty/",
                "keep.js",
                "src/x.py",
            ],
            dockerignore: Some("node_modules\n!**/keep.js\n"),
            dockerfile_inside: None,
            specific_ignore: None,
        },
        Case {
            name: "top-level wildcard with exceptions, unicode names, BOM",
            files: &[
                "main.py",
                "notes.txt",
                "sub/other.txt",
                "é.txt",
                "ü1.md",
                "üx.md",
            ],
            dockerignore: Some("\u{feff}*\n!*.py\n!sub\nü?.md\n"),
            dockerfile_inside: None,
            specific_ignore: None,
        },
    ];
    for case in &cases {
        check(&runner, case);
    }
}

#[test]
fn secrets_in_the_context_are_flagged_with_the_line_that_excludes_them() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = dir.path();
    tree(
        ctx,
        &[
            ".env.local",
            ".env.example",
            "deploy/id_ed25519",
            "deploy/id_ed25519.pub",
            "tls/site.key",
            ".pypirc",
            "sub/.git/config",
            "src/app.py",
        ],
    );
    std::fs::write(ctx.join(".dockerignore"), "*.log\n").unwrap();
    let audit = validate::audit(ctx, None).unwrap();
    // Each secret with its kind and the line that excludes it.
    let found = audit.warnings();
    assert_eq!(
        found,
        vec![
            "environment file in the build context: .env.local (add `**/.env*` to .dockerignore)",
            "PyPI credentials in the build context: .pypirc (add `**/.pypirc` to .dockerignore)",
            "SSH private key in the build context: deploy/id_ed25519 (add `**/id_ed25519*` to \
             .dockerignore)",
            "git repository in the build context: sub/.git (add `**/.git` to .dockerignore)",
            "private key or certificate in the build context: tls/site.key (add `**/*.key` to \
             .dockerignore)",
        ]
    );
    // Appending the suggested lines really removes them.
    let mut ignore = String::from("*.log\n");
    for warning in &found {
        let fix = warning
            .split_once("(add `")
            .and_then(|(_, rest)| rest.split_once("` to .dockerignore)"))
            .unwrap()
            .0;
        ignore.push_str(fix);
        ignore.push('\n');
    }
    std::fs::write(ctx.join(".dockerignore"), ignore).unwrap();
    let again = validate::audit(ctx, None).unwrap();
    assert!(again.warnings().is_empty(), "{:?}", again.warnings());
    // The generic lines take the look-alikes too (`.env.example`, the `.pub` key).
    assert_eq!(again.file_paths(), vec![".dockerignore", "src/app.py"]);
}

#[test]
fn large_files_are_warned_about() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = dir.path();
    std::fs::create_dir_all(ctx.join("models")).unwrap();
    std::fs::write(ctx.join("models/weights.bin"), vec![0u8; 3_000_000]).unwrap();
    std::fs::write(ctx.join("small.txt"), "x").unwrap();
    let audit = validate::audit(ctx, None)
        .unwrap()
        .large_file_bytes(1_000_000);
    // One large file, and only it.
    assert_eq!(
        audit.warnings(),
        vec!["large file in the build context: models/weights.bin (3 MB, limit 1 MB)"]
    );
    // The largest directory is `models`, with all but the one byte of `small.txt`.
    let text = audit.to_string();
    assert_eq!(
        e2e::section(&text, "largest directories:")[0],
        format!("  {:>10}  models (1 files)", human_bytes(3_000_000)),
        "{text}"
    );
    assert_eq!(audit.total_bytes, 3_000_001);
}

/// 100,000 files walked and matched exactly (how fast is `cargo xtask bench --only
/// context_audit`'s business).
#[test]
fn hundred_thousand_files_are_matched_exactly() {
    let dir = tempfile::tempdir().unwrap();
    e2e::python_shaped_tree(dir.path(), 100_000).unwrap();
    let audit = validate::audit(dir.path(), None).unwrap();
    // Caches (a quarter) and the virtualenv (a quarter) are excluded, one venv dir re-included.
    assert_eq!(audit.file_paths().len(), 50_000 + 100 + 1);

    // A wildcard exception forbids pruning: every one of the 100,000 files is visited.
    std::fs::write(
        dir.path().join(".dockerignore"),
        "**/__pycache__\n*.pyc\n.venv/\n!.venv/**/p1\n",
    )
    .unwrap();
    let audit = validate::audit(dir.path(), None).unwrap();
    // `.venv/<site>/p1` directories: d = 1 and d = 41, 81, ... (d % 40 == 1): 25 of them.
    assert_eq!(audit.file_paths().len(), 50_000 + 25 * 100 + 1);
}

#[test]
fn non_utf8_file_names_are_kept_byte_exact() {
    use std::os::unix::ffi::OsStrExt;
    let dir = tempfile::tempdir().unwrap();
    let raw: &[u8] = b"caf\xe9-\xff.txt";
    let name = std::ffi::OsStr::from_bytes(raw);
    std::fs::create_dir(dir.path().join("media")).unwrap();
    std::fs::write(dir.path().join("media").join(name), b"latin-1 name").unwrap();
    std::fs::write(dir.path().join("ok.txt"), b"x").unwrap();
    let audit = validate::audit(dir.path(), None).unwrap();
    // Shown with U+FFFD for its bad bytes, with its 12 bytes counted; that the walk keeps
    // the byte-exact name and opens the real file is `non_utf8_file_names_are_kept_byte_exact`
    // in the library.
    assert_eq!(
        audit.file_paths(),
        vec!["media/caf\u{fffd}-\u{fffd}.txt", "ok.txt"]
    );
    assert_eq!(audit.total_bytes, 12 + 1);
}
