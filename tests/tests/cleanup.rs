//! Clean-up against the real engine: owned resources next to look-alike decoys; exactly the
//! owned ones are listed (dry run) and removed, a second run finds nothing, and build
//! folders outside the project root are refused.
//!
//! Other engineers share the engine, so every name is built from a stem unique to this
//! test run, and every decoy is removed at the end.

use std::collections::BTreeSet;
use std::path::Path;

use buildkit_lib::cleanup::{Cleanup, CleanupPlan};
use buildkit_lib::plan::Step;
use buildkit_lib::units::human_bytes;
use buildkit_lib::{Cmd, Runner};
use buildkit_lib::{PROJECT_LABEL, RUN_LABEL};

/// Every container and image a test created, removed (forced) when dropped.
struct Resources<'a> {
    engine: &'a Runner,
    containers: Vec<String>,
    images: Vec<String>,
}

impl<'a> Resources<'a> {
    fn new(engine: &'a Runner) -> Resources<'a> {
        Resources {
            engine,
            containers: Vec::new(),
            images: Vec::new(),
        }
    }

    /// `docker create` (or `docker run -d` when `running`) of busybox named `name`.
    fn container(&mut self, name: &str, labels: &[String], running: bool) {
        let mut cmd = Cmd::new("docker");
        cmd = if running {
            cmd.args(["run", "--detach"])
        } else {
            cmd.arg("create")
        };
        cmd = cmd
            .args(["--name", name, "--network", "none"])
            .args(labels.iter().cloned())
            .args([
                e2e::BUSYBOX_IMAGE,
                "sleep",
                if running { "300" } else { "1" },
            ]);
        self.containers.push(name.to_string());
        self.engine.capture(&cmd).expect("create a test container");
    }

    /// Tags busybox as `reference`.
    fn tag(&mut self, reference: &str) {
        self.images.push(reference.to_string());
        self.engine
            .capture(&Cmd::new("docker").args(["tag", e2e::BUSYBOX_IMAGE, reference]))
            .expect("tag a test image");
    }

    /// A new image of its own (a commit of `container`), tagged `reference` or untagged,
    /// with `labels` (`KEY=VALUE`). Returns its id.
    fn commit(&mut self, container: &str, reference: Option<&str>, labels: &[String]) -> String {
        let mut cmd = Cmd::new("docker").arg("commit");
        for label in labels {
            cmd = cmd.arg("--change").arg(format!("LABEL {label}"));
        }
        cmd = cmd.arg(container);
        if let Some(r) = reference {
            cmd = cmd.arg(r);
        }
        let id = self
            .engine
            .capture(&cmd)
            .expect("commit a test image")
            .stdout
            .trim()
            .to_string();
        self.images
            .push(reference.map(str::to_string).unwrap_or_else(|| id.clone()));
        id
    }

    fn container_exists(&self, name: &str) -> bool {
        let cmd = Cmd::new("docker").args(["container", "inspect", "--format", "{{.Name}}", name]);
        self.engine.capture(&cmd).is_ok()
    }

    fn image_exists(&self, reference: &str) -> bool {
        let cmd = Cmd::new("docker").args(["image", "inspect", "--format", "{{.Id}}", reference]);
        self.engine.capture(&cmd).is_ok()
    }
}

impl Drop for Resources<'_> {
    fn drop(&mut self) {
        for name in &self.containers {
            let _ = self
                .engine
                .capture(&Cmd::new("docker").args(["rm", "--force", name]));
        }
        for image in self.images.iter().rev() {
            let _ = self
                .engine
                .capture(&Cmd::new("docker").args(["rmi", "--force", image]));
        }
    }
}

/// The lines of a plan or summary that name a resource it removes (or would):
/// `  <resource> (<size>)[ <note>;][ selected by <selector>]`, without the indent.
fn item_lines(shown: &str) -> Vec<String> {
    shown
        .lines()
        .filter_map(|l| l.strip_prefix("  "))
        .map(str::to_string)
        .collect()
}

/// The resource of an item line.
fn resource(line: &str) -> String {
    line.split_once(" (").map_or(line, |(r, _)| r).to_string()
}

/// What the plan removes, in its order.
fn listed(plan: &CleanupPlan) -> Vec<String> {
    item_lines(&plan.to_string())
        .iter()
        .map(|l| resource(l))
        .collect()
}

/// The size the plan gives its `i`th item (`size unknown` when it has none).
fn size(plan: &CleanupPlan, i: usize) -> String {
    let line = &item_lines(&plan.to_string())[i];
    let (_, rest) = line.split_once(" (").unwrap();
    rest.split_once(')').unwrap().0.to_string()
}

/// The note the plan gives its `i`th item, if any.
fn note(plan: &CleanupPlan, i: usize) -> Option<String> {
    let line = &item_lines(&plan.to_string())[i];
    let (_, rest) = line.split_once(") ").unwrap();
    rest.split_once("; ").map(|(note, _)| note.to_string())
}

/// What the plan keeps, each with why.
fn kept(plan: &CleanupPlan) -> Vec<String> {
    plan.to_string()
        .lines()
        .filter_map(|l| l.strip_prefix("keep "))
        .map(str::to_string)
        .collect()
}

/// The removals (`docker stop`, `rm`, `rmi`) `runner` ran or printed, as command lines.
fn removals(runner: &Runner) -> Vec<String> {
    runner
        .recorded()
        .commands()
        .iter()
        .filter(|argv| ["stop", "rm", "rmi"].contains(&argv[1].as_str()))
        .map(|argv| argv.join(" "))
        .collect()
}

#[test]
fn name_prefix_and_image_pattern_remove_exactly_the_owned_ones() {
    let engine = e2e::engine();
    let mut res = Resources::new(&engine);
    let s = e2e::unique("cu");
    // Owned: prefix `<s>app_`; `<s>app_ci` is running.
    res.container(&format!("{s}app_1"), &[], false);
    res.container(&format!("{s}app_ci"), &[], true);
    // Decoys: the prefix somewhere inside, another separator, a longer word.
    for decoy in [
        format!("my{s}app_1"),
        format!("{s}app-2"),
        format!("x{s}app_1"),
        format!("{s}application"),
    ] {
        res.container(&decoy, &[], false);
    }
    // Images: `<s>app:ci` owned; `<s>app-tools:1` and `other/<s>app:ci` decoys.
    res.tag(&format!("{s}app:ci"));
    res.tag(&format!("{s}app-tools:1"));
    res.tag(&format!("other/{s}app:ci"));
    // `<s>app:inuse` is an image of its own that a decoy container still uses.
    let inuse_id = res.commit(&format!("{s}app-2"), Some(&format!("{s}app:inuse")), &[]);
    res.images.insert(0, inuse_id);
    let user = Cmd::new("docker").args([
        "create",
        "--name",
        &format!("{s}user_2"),
        "--network",
        "none",
        &format!("{s}app:inuse"),
        "sleep",
        "1",
    ]);
    res.containers.push(format!("{s}user_2"));
    engine.capture(&user).unwrap();

    let cleanup = Cleanup::new()
        .container_prefix(&format!("{s}app_"))
        .unwrap()
        .images(&format!("{s}app"))
        .unwrap();

    // Dry run (whose read-only queries run): lists exactly the owned ones, removes nothing.
    let dry = engine
        .clone()
        .dry_run(true)
        .dry_run_queries(true)
        .with_fresh_record();
    let plan = cleanup.list(&dry).unwrap();
    assert_eq!(
        listed(&plan),
        [
            format!("container {s}app_1"),
            format!("container {s}app_ci"),
            format!("image {s}app:ci"),
        ]
    );
    assert_eq!(
        kept(&plan),
        [format!(
            "image {s}app:inuse: in use by container {s}user_2 (remove the container, or use force)"
        )]
    );
    // `<s>app:ci` shares busybox's image: only the tag goes, freeing nothing.
    assert_eq!(size(&plan, 2), human_bytes(0));
    assert_ne!(size(&plan, 0), "size unknown");
    let summary = plan.run(&dry).unwrap();
    // The removals, in order (printed by the dry run, not run).
    assert_eq!(
        removals(&dry),
        [
            format!("docker rm --volumes {s}app_1"),
            format!("docker stop --time 10 {s}app_ci"),
            format!("docker rm --volumes {s}app_ci"),
            format!("docker rmi {s}app:ci"),
        ]
    );
    // The dry run's summary says what a real run removes.
    assert_eq!(item_lines(&summary.to_string()).len(), 3, "{summary}");
    // Only read-only queries ran; the removals were printed, not run.
    let ran: BTreeSet<String> = dry
        .recorded()
        .commands()
        .iter()
        .map(|argv| argv[..2].join(" "))
        .collect();
    assert!(ran.contains("docker stop") && ran.contains("docker rmi"));
    assert!(res.container_exists(&format!("{s}app_1")));
    assert!(res.image_exists(&format!("{s}app:ci")));

    // The real run removes exactly those.
    let summary = cleanup.run(&engine).unwrap();
    let removed: Vec<String> = item_lines(&summary.to_string())
        .iter()
        .map(|l| resource(l))
        .collect();
    assert_eq!(
        removed,
        [
            format!("container {s}app_1"),
            format!("container {s}app_ci"),
            format!("image {s}app:ci"),
        ]
    );
    eprintln!("{summary}");
    for gone in [format!("{s}app_1"), format!("{s}app_ci")] {
        assert!(!res.container_exists(&gone), "{gone} still exists");
    }
    assert!(!res.image_exists(&format!("{s}app:ci")));
    for decoy in [
        format!("my{s}app_1"),
        format!("{s}app-2"),
        format!("x{s}app_1"),
        format!("{s}application"),
        format!("{s}user_2"),
    ] {
        assert!(res.container_exists(&decoy), "decoy {decoy} was removed");
    }
    for decoy in [
        format!("{s}app-tools:1"),
        format!("other/{s}app:ci"),
        format!("{s}app:inuse"),
        e2e::BUSYBOX_IMAGE.to_string(),
    ] {
        assert!(res.image_exists(&decoy), "decoy image {decoy} was removed");
    }

    // A second run finds nothing (the image in use is still kept, and says why).
    let again = cleanup.list(&engine).unwrap();
    assert_eq!(listed(&again), Vec::<String>::new());
    assert_eq!(kept(&again).len(), 1);

    // With force, the image in use goes too.
    let forced = cleanup.clone().force(true).list(&engine).unwrap();
    assert_eq!(listed(&forced), [format!("image {s}app:inuse")]);
    assert_eq!(
        note(&forced, 0).as_deref(),
        Some(format!("forced: in use by container {s}user_2").as_str())
    );
    let real = engine.with_fresh_record();
    forced.run(&real).unwrap();
    assert_eq!(
        removals(&real).first(),
        Some(&format!("docker rmi --force {s}app:inuse"))
    );
    assert!(!res.image_exists(&format!("{s}app:inuse")));
}

#[test]
fn labels_select_the_project_and_nothing_else() {
    let engine = e2e::engine();
    let mut res = Resources::new(&engine);
    let s = e2e::unique("cl");
    let project = format!("{s}proj");
    let ours = vec![
        "--label".to_string(),
        format!("{PROJECT_LABEL}={project}"),
        "--label".to_string(),
        format!("{RUN_LABEL}={s}run"),
    ];
    let theirs = vec![
        "--label".to_string(),
        format!("{PROJECT_LABEL}={project}-other"),
    ];
    res.container(&format!("{s}web_1"), &ours, true);
    res.container(&format!("{s}web_2"), &ours, false);
    res.container(&format!("{s}theirs_1"), &theirs, false);
    res.container(&format!("{s}plain_1"), &[], false);
    let label = format!("{PROJECT_LABEL}={project}");
    res.commit(
        &format!("{s}plain_1"),
        Some(&format!("{s}img:1")),
        std::slice::from_ref(&label),
    );
    let dangling = res.commit(&format!("{s}plain_1"), None, &[label]);
    res.commit(
        &format!("{s}plain_1"),
        Some(&format!("{s}img:other")),
        &[format!("{PROJECT_LABEL}={project}-other")],
    );
    // An owned container uses the owned image: removed first, it does not keep the image.
    let web_3 = Cmd::new("docker")
        .args([
            "create",
            "--name",
            &format!("{s}web_3"),
            "--network",
            "none",
        ])
        .args(ours.iter().cloned())
        .args([format!("{s}img:1"), "sleep".into(), "1".into()]);
    res.containers.push(format!("{s}web_3"));
    engine.capture(&web_3).unwrap();

    let cleanup = Cleanup::for_project(&project);
    let plan = cleanup.list(&engine).unwrap();
    let short = &dangling.trim_start_matches("sha256:")[..12];
    assert_eq!(
        listed(&plan),
        [
            format!("container {s}web_1"),
            format!("container {s}web_2"),
            format!("container {s}web_3"),
            format!("image {s}img:1"),
            format!("dangling image {short}"),
        ]
    );
    assert!(kept(&plan).is_empty(), "{plan}");
    assert!(
        !["size unknown".to_string(), human_bytes(0)].contains(&size(&plan, 3)),
        "{plan}"
    );
    eprintln!("{plan}");
    let summary = plan.run(&engine).unwrap();
    assert_eq!(item_lines(&summary.to_string()).len(), 5, "{summary}");
    assert!(summary.bytes_reclaimed > 0);
    assert!(!res.container_exists(&format!("{s}web_1")));
    assert!(!res.image_exists(&dangling));
    assert!(res.container_exists(&format!("{s}theirs_1")));
    assert!(res.container_exists(&format!("{s}plain_1")));
    assert!(res.image_exists(&format!("{s}img:other")));
    assert_eq!(
        cleanup.list(&engine).unwrap().to_string(),
        "nothing to remove"
    );
}

#[test]
fn directories_inside_the_root_only() {
    let root = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    let r = root.path();
    std::fs::create_dir_all(r.join("dist/app")).unwrap();
    std::fs::write(r.join("dist/app/app.bin"), vec![7u8; 4096]).unwrap();
    std::fs::create_dir_all(r.join("build")).unwrap();
    std::fs::write(r.join("build/app.log"), b"log").unwrap();
    std::fs::write(r.join("keep.txt"), b"source").unwrap();
    std::fs::write(outside.path().join("precious"), b"not ours").unwrap();
    std::os::unix::fs::symlink(outside.path(), r.join("out")).unwrap();
    let runner = e2e::runner();
    let real_root = r.canonicalize().unwrap();

    let refused = |path: &Path| {
        Cleanup::new()
            .directories(r, [path])
            .list(&runner)
            .unwrap_err()
            .to_string()
    };
    assert_eq!(
        refused(Path::new("../dist")),
        format!(
            "refusing to remove ../dist: `..` leads out of the project root {}; name a \
             directory inside it, such as `dist`",
            real_root.display()
        )
    );
    assert_eq!(
        refused(outside.path()),
        format!(
            "refusing to remove {}: outside the project root {}; only directories inside the \
             project are removed",
            outside.path().display(),
            real_root.display()
        )
    );
    assert_eq!(
        refused(Path::new("out")),
        format!(
            "refusing to remove out: it is a symlink to {}, outside the project root {}; only \
             directories inside the project are removed",
            outside.path().canonicalize().unwrap().display(),
            real_root.display()
        )
    );
    assert_eq!(
        refused(Path::new(".")),
        "refusing to remove .: it is the project root itself; name a directory inside it, \
         such as `dist`"
    );
    // A refused path fails the whole clean-up before anything is removed.
    let err = Cleanup::new()
        .directories(r, ["dist", "out"])
        .run(&runner)
        .unwrap_err();
    assert!(err.to_string().starts_with("refusing to remove out"));
    assert!(r.join("dist/app/app.bin").exists());
    assert!(outside.path().join("precious").exists());

    let cleanup = Cleanup::new().directories(r, ["dist", "build"]);
    let dry = e2e::runner().dry_run(true);
    let plan = cleanup.list(&dry).unwrap();
    assert_eq!(listed(&plan), ["directory dist", "directory build"]);
    // A dry run of the listing says what a real run frees.
    assert_eq!(plan.run(&dry).unwrap().bytes_reclaimed, 4099);
    assert!(
        plan.to_string()
            .starts_with("would remove 2 directories (4.1 kB known):"),
        "{plan}"
    );
    assert!(r.join("dist/app/app.bin").exists());

    let summary = cleanup.run(&runner).unwrap();
    assert_eq!(summary.bytes_reclaimed, 4099);
    assert_eq!(
        summary.to_string(),
        "removed 2 directories: 4.1 kB reclaimed\n  directory dist (4.1 kB)\n  directory \
         build (3 B)"
    );
    assert!(!r.join("dist").exists() && !r.join("build").exists());
    assert!(r.join("keep.txt").exists());
    assert!(outside.path().join("precious").exists());
    assert!(r.join("out").exists(), "the symlink was not selected");
    assert_eq!(
        cleanup.list(&runner).unwrap().to_string(),
        "nothing to remove"
    );
}

/// `docker system df -v`'s figures for `image` (`repository:tag`), parsed to bytes:
/// (Size, SharedSize, UniqueSize). The CLI prints them with four significant digits.
///
/// Asked again (up to three times) when the listing trips over a snapshot that went away
/// meanwhile: Docker 28.5 on containerd 2.1 fails the whole `system df -v` with
/// `NotFound: snapshot ... does not exist` when a build running beside it drops one of its
/// transient views (the library's own `system df` queries retry the same way).
fn system_df(engine: &Runner, image: &str) -> (u64, u64, u64) {
    let df = Cmd::new("docker")
        .args(["system", "df", "-v", "--format", "json"])
        .read_only();
    let mut attempt = 0;
    let out = loop {
        match engine.capture(&df) {
            Ok(out) => break out,
            Err(e) if attempt < 2 && e.to_string().contains("not found") => {
                attempt += 1;
                std::thread::sleep(std::time::Duration::from_millis(300 * attempt));
            }
            Err(e) => panic!("{e}"),
        }
    };
    let value: serde_json::Value = serde_json::from_str(out.stdout.trim()).unwrap();
    let (repository, tag) = image.rsplit_once(':').unwrap();
    let row = value["Images"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["Repository"] == repository && i["Tag"] == tag)
        .unwrap_or_else(|| panic!("{image} not in `docker system df -v`"));
    let bytes =
        |key: &str| buildkit_lib::units::parse_docker_size(row[key].as_str().unwrap()).unwrap();
    (bytes("Size"), bytes("SharedSize"), bytes("UniqueSize"))
}

/// Two images sharing a big layer, both cleaned: the reclaimed figure counts the shared
/// layer once. Checked against the engine's own figures read before the clean-up: each
/// image's `UniqueSize` (`docker system df -v`) plus the shared layer's bytes (`docker
/// history`), against the old sum of both images' sizes, which counts it twice.
#[test]
fn a_layer_shared_by_two_removed_images_is_reclaimed_once() {
    let engine = e2e::engine();
    let mut res = Resources::new(&engine);
    let project = e2e::unique("clean-shared");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("Dockerfile"),
        format!(
            "ARG BASE\nFROM ${{BASE}}\n\
             RUN dd if=/dev/zero of=/big bs=1000 count=30000 2>/dev/null && echo {project} > /id\n\
             ARG WHICH\nRUN echo ${{WHICH}} > /which\n"
        ),
    )
    .unwrap();
    let images = [format!("{project}-a:1"), format!("{project}-b:1")];
    for (image, which) in images.iter().zip(["a", "b"]) {
        res.images.push(image.clone());
        engine
            .run(
                &Cmd::new("docker")
                    .args(["buildx", "build", "--progress=plain", "--network", "none"])
                    .args(["--load", "-t", image])
                    .arg("--label")
                    .arg(format!("{PROJECT_LABEL}={project}"))
                    .arg("--build-arg")
                    .arg(format!("BASE={}", e2e::BUSYBOX_IMAGE))
                    .arg("--build-arg")
                    .arg(format!("WHICH={which}"))
                    .arg(dir.path()),
            )
            .unwrap();
    }
    let big: u64 = engine
        .capture(
            &Cmd::new("docker")
                .args([
                    "history",
                    "--no-trunc",
                    "--human=false",
                    "--format",
                    "{{.Size}}\t{{.CreatedBy}}",
                    &images[0],
                ])
                .read_only(),
        )
        .unwrap()
        .stdout
        .lines()
        .find(|l| l.contains("dd if=/dev/zero"))
        .and_then(|l| l.split('\t').next())
        .unwrap()
        .parse()
        .unwrap();
    assert!(big >= 30_000_000, "{big}");
    let (size_a, shared_a, unique_a) = system_df(&engine, &images[0]);
    let (size_b, shared_b, unique_b) = system_df(&engine, &images[1]);
    assert!(shared_a >= big && shared_b >= big, "{shared_a} {shared_b}");

    let plan = Cleanup::for_project(&project).list(&engine).unwrap();
    eprintln!("{plan}");
    let mut removed = listed(&plan);
    removed.sort();
    assert_eq!(
        removed,
        [
            format!("image {}", images[0]),
            format!("image {}", images[1])
        ]
    );
    // What the listing said it frees (a dry run of it), then what it freed.
    let planned = plan
        .run(&engine.clone().dry_run(true))
        .unwrap()
        .bytes_reclaimed;
    let summary = plan.run(&engine).unwrap();
    eprintln!("{summary}");
    let reclaimed = summary.bytes_reclaimed;
    assert_eq!(reclaimed, planned);
    // What only these two images hold, the shared layer once.
    let expected = unique_a + unique_b + big;
    let tolerance = expected / 1000 + 10_000; // four significant digits per figure
    assert!(
        reclaimed.abs_diff(expected) <= tolerance,
        "reclaimed {reclaimed}, expected {expected} ({unique_a} + {unique_b} + {big})\n{summary}"
    );
    // The sum of both sizes counts the shared layer twice (and busybox's, which stays).
    assert!(reclaimed + big / 2 < size_a + size_b, "{summary}");
    assert!(
        summary.to_string().starts_with(&format!(
            "removed 2 images: {} reclaimed",
            human_bytes(reclaimed)
        )),
        "{summary}"
    );
    assert!(!res.image_exists(&images[0]) && !res.image_exists(&images[1]));
}
