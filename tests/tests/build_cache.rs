//! Build cache usage and pruning against the real engine: `docker system df` and
//! `docker buildx du` parsed into typed usage, and a prune (dry run, then real) of a cache
//! record this test made and nothing else.

use buildkit_lib::plan::Step as _;
use std::time::Duration;

use buildkit_lib::units::human_bytes;
use buildkit_lib::validate::{self, Prune, PruneResult};
use buildkit_lib::{Cmd, Runner};

/// The records a plan lists, as its `Display` shows them: `(id, description and last use)`.
fn listed(plan: &PruneResult) -> Vec<(String, String)> {
    plan.to_string()
        .lines()
        .skip(1)
        .map(|l| {
            let mut parts = l.trim_start().splitn(3, "  ");
            let _size = parts.next().unwrap();
            let id = parts.next().unwrap().to_string();
            (id, parts.next().unwrap().to_string())
        })
        .collect()
}

/// What `prune` would remove now: its plan, from a dry run that lets the listing run.
fn predicted(prune: &Prune, runner: &Runner) -> anyhow::Result<PruneResult> {
    let dry = runner.clone().dry_run(true).dry_run_queries(true);
    prune.run(&dry)
}

/// The ids a plan lists.
fn ids(plan: &PruneResult) -> Vec<String> {
    listed(plan).into_iter().map(|(id, _)| id).collect()
}

/// The one record a dry run of `prune` lists, whose description is `description`: its id.
fn only_record(runner: &Runner, prune: &Prune, description: &str) -> String {
    let plan = predicted(prune, runner).unwrap();
    let listed = listed(&plan);
    assert_eq!(listed.len(), 1, "{plan}");
    assert!(
        listed[0].1.starts_with(&format!("{description} (")),
        "{plan}"
    );
    listed[0].0.clone()
}

/// A figure of a `Display`, in bytes (`3.05 MB`).
fn bytes_of(text: &str) -> u64 {
    buildkit_lib::units::parse_docker_size(text).unwrap()
}

/// Builds `FROM scratch` + `COPY <unique file>` into the cache only, and returns the
/// description of the cache record it made.
/// The engine's build cache is one shared store, and `buildx du` and `prune` answer
/// differently while another of them runs: the tests that read or prune it take turns.
static ENGINE_CACHE: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn engine_cache_turn() -> std::sync::MutexGuard<'static, ()> {
    ENGINE_CACHE.lock().unwrap_or_else(|e| e.into_inner())
}

/// A name no earlier run used: build cache records outlive test processes, and a process
/// id (in [`e2e::unique`]) comes back sooner or later, which once matched a stale record.
fn run_unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{}-{nanos}", e2e::unique(prefix))
}

fn make_cache_record(runner: &Runner, name: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let file = format!("{name}.txt");
    std::fs::write(dir.path().join(&file), name.repeat(200)).unwrap();
    std::fs::write(
        dir.path().join("Dockerfile"),
        format!("FROM scratch\nCOPY {file} /\n"),
    )
    .unwrap();
    runner
        .run(
            &Cmd::new("docker")
                .args([
                    "buildx",
                    "build",
                    "--progress=plain",
                    "--output",
                    "type=cacheonly",
                ])
                .arg(dir.path()),
        )
        .unwrap();
    format!("[1/1] COPY {file} /")
}

/// The engine's `docker system df` read into the cache usage: its `Build Cache` row, as
/// the CLI prints it here. (Its other rows, typed, are `system_df_lines` in the library.)
#[test]
fn system_df_is_typed_usage() {
    let _turn = engine_cache_turn();
    let runner = e2e::engine();
    let usage = validate::Usage::new().run(&runner).unwrap();
    // Read as the library reads it: again when it trips over a record being removed.
    let df_cmd = Cmd::new("docker")
        .args(["system", "df", "--format", "json"])
        .read_only();
    let mut attempt = 0;
    let out = loop {
        match runner.capture(&df_cmd) {
            Ok(out) => break out.stdout,
            Err(e) if attempt < 4 && e.to_string().contains("not found") => {
                attempt += 1;
                std::thread::sleep(Duration::from_secs(1));
            }
            Err(e) => panic!("{e}"),
        }
    };
    let rows: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let kinds: Vec<&str> = rows.iter().map(|r| r["Type"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        ["Images", "Containers", "Local Volumes", "Build Cache"]
    );
    let cache_row = &rows[3];
    let df = bytes_of(cache_row["Size"].as_str().unwrap());
    let text = usage.to_string();
    assert!(
        text.contains(&format!(
            "`docker system df` counts only the records not shared with images ({}), the \
             shared ones being counted under Images",
            human_bytes(df)
        )),
        "{text}\n{out}"
    );
    assert!(!text.contains("note:"), "{text}");
    eprintln!("{usage}");
}

#[test]
fn buildx_du_and_a_targeted_prune() {
    let _turn = engine_cache_turn();
    let runner = e2e::engine();
    let name = run_unique("cache-record");
    let description = make_cache_record(&runner, &name);

    let by_description = format!("description={description}");

    // `buildx du` (a named builder): the record, regular, its size.
    let named_regular = Prune::new()
        .builder("default")
        .filter("type=regular")
        .filter(by_description.clone());
    let id = only_record(&runner, &named_regular, &description);
    let size = predicted(&named_regular, &runner).unwrap().planned_bytes;
    assert!(size >= name.len() as u64 * 200, "{size}");
    assert!(validate::Usage::new().run(&runner).unwrap().total_bytes >= size);

    // The same record from `system df --verbose`.
    let from_df = Prune::new().filter(by_description.clone());
    assert_eq!(only_record(&runner, &from_df, &description), id);

    // Both read its time: made just now (none unused for ten minutes), and in the past
    // (unused for a second, after three).
    for prune in [named_regular.clone(), from_df.clone()] {
        let fresh = prune.clone().until(Duration::from_secs(600));
        assert!(ids(&predicted(&fresh, &runner).unwrap()).is_empty());
    }
    std::thread::sleep(Duration::from_secs(3));
    for prune in [named_regular.clone(), from_df.clone()] {
        let past = prune.clone().until(Duration::from_secs(1));
        assert_eq!(ids(&predicted(&past, &runner).unwrap()), vec![id.clone()]);
    }

    let only_ours = Prune::new().filter(format!("id={id}"));
    // Unused for a day: too fresh, nothing would go.
    let aged = only_ours.clone().until(Duration::from_secs(86_400));
    assert!(ids(&predicted(&aged, &runner).unwrap()).is_empty());
    // Through the named builder (`buildx du`, relative times) the prediction agrees.
    let named = only_ours.clone().builder("default");
    let plan = predicted(&named, &runner).unwrap();
    assert_eq!(ids(&plan), vec![id.clone()], "{plan}");
    let named_aged = named.clone().until(Duration::from_secs(86_400));
    assert!(ids(&predicted(&named_aged, &runner).unwrap()).is_empty());

    // A dry run that may query lists the record and removes nothing.
    let dry = e2e::engine().dry_run(true).dry_run_queries(true);
    let result = only_ours.run(&dry).unwrap();
    assert_eq!(result.reclaimed_bytes, 0);
    assert_eq!(ids(&result), vec![id.clone()], "{result}");
    assert_eq!(
        dry.recorded().commands().last().unwrap().join(" "),
        format!("docker buildx prune --force --filter id={id}")
    );
    assert_eq!(
        ids(&predicted(&only_ours, &runner).unwrap()),
        vec![id.clone()]
    );

    // The real prune removes exactly it and reports the bytes.
    let result = only_ours.run(&runner).unwrap();
    assert_eq!(ids(&result), vec![id.clone()], "{result}");
    assert_eq!(result.reclaimed_bytes, size);
    let after = predicted(&named_regular, &runner).unwrap();
    assert!(
        ids(&after).is_empty(),
        "the record is still there after the prune: {after}"
    );
}

const DU_TEXT: &str = "ID:\t\tabc\nCreated at:\t2026-11-21 05:45:02.276432007 +0000 UTC\nMutable:\tfalse\n\
Reclaimable:\ttrue\nShared:\t\ttrue\nSize:\t\t3.055MB\nDescription:\t[1/1] COPY a /\nUsage count:\t2\n\
Last used:\tAbout a minute ago\nType:\t\tregular\n\nShared:\t\t3.055MB\nPrivate:\t0B\n\
Reclaimable:\t3.055MB\nTotal:\t\t3.055MB\n";

/// A fake docker: `buildx du` prints [`DU_TEXT`], `system df` runs `df_body` (with `$n`,
/// its call number).
fn fake_docker(dir: &std::path::Path, df_body: &str) -> e2e::FakeBin {
    fs_write(&dir.join("du.txt"), DU_TEXT);
    e2e::FakeBin::new().script(
        "docker",
        &format!(
            "if [ \"$1\" = buildx ]; then cat '{du}'; exit 0; fi\n\
             echo x >> '{calls}'\nn=$(wc -l < '{calls}')\n{df_body}",
            du = dir.join("du.txt").display(),
            calls = dir.join("df-calls").display()
        ),
    )
}

fn fs_write(path: &std::path::Path, text: &str) {
    std::fs::write(path, text).unwrap();
}

fn df_calls(dir: &std::path::Path) -> usize {
    std::fs::read_to_string(dir.join("df-calls"))
        .map(|t| t.lines().count())
        .unwrap_or(0)
}

const REMOVAL: &str = "echo 'Error response from daemon: container 3f2a9c1d: driver \"overlay2\" failed to compute size: Removal In Progress' >&2; exit 1";

#[test]
fn a_container_stuck_in_removal_does_not_fail_the_cache_analysis() {
    let work = tempfile::tempdir().unwrap();
    let fake = fake_docker(work.path(), REMOVAL);
    let runner = e2e::runner().env("PATH", fake.path_env());
    let usage = validate::Usage::new().run(&runner).unwrap();
    assert_eq!(df_calls(work.path()), 3, "tried three times");
    let text = usage.to_string();
    // No `system df` figure, and the one note saying why.
    assert!(
        text.contains(
            "`docker system df` counts only the records not shared with images, the shared \
             ones being counted under Images"
        ),
        "{text}"
    );
    assert_eq!(
        text.lines()
            .filter_map(|l| l.strip_prefix("  note: "))
            .collect::<Vec<_>>(),
        [
            "`docker system df` did not answer: Error response from daemon: container 3f2a9c1d: \
          driver \"overlay2\" failed to compute size: Removal In Progress"
        ]
    );
    assert_eq!(usage.total_bytes, 3_055_000);
    assert!(
        text.starts_with(&format!(
            "build cache: {} in 1 record (",
            human_bytes(3_055_000)
        )),
        "{text}"
    );

    // Passing on its own: the second try answers.
    let work = tempfile::tempdir().unwrap();
    let fake = fake_docker(
        work.path(),
        &format!(
            "if [ \"$n\" -lt 2 ]; then {REMOVAL}; fi\necho '{{\"Active\":\"0\",\"Reclaimable\":\"0B\",\"Size\":\"0B\",\"TotalCount\":\"1\",\"Type\":\"Build Cache\"}}'"
        ),
    );
    let runner = e2e::runner().env("PATH", fake.path_env());
    let usage = validate::Usage::new().run(&runner).unwrap();
    assert_eq!(df_calls(work.path()), 2);
    let text = usage.to_string();
    assert!(
        text.contains("counts only the records not shared with images (0 B), the shared"),
        "{text}"
    );
    assert!(!text.contains("note:"), "{text}");

    // An error that is not transient still fails a `system df` query at once.
    let work = tempfile::tempdir().unwrap();
    let fake = fake_docker(work.path(), "echo 'permission denied' >&2; exit 1");
    let runner = e2e::runner().env("PATH", fake.path_env());
    assert!(predicted(&Prune::new(), &runner).is_err());
    assert_eq!(df_calls(work.path()), 1);
}

#[test]
fn cache_usage_reconciles_system_df_and_buildx_du_on_the_engine() {
    let _turn = engine_cache_turn();
    let runner = e2e::engine();
    let usage = validate::Usage::new().run(&runner).unwrap();
    let text = usage.to_string();
    // The figures as the report shows them (three significant digits).
    let between = |after: &str, before: &str| {
        let rest = text.split_once(after).unwrap_or_else(|| panic!("{text}")).1;
        bytes_of(
            rest.split_once(before)
                .unwrap_or_else(|| panic!("{text}"))
                .0,
        )
    };
    let first_line = text.lines().next().unwrap();
    let private_bytes = bytes_of(
        first_line
            .split_once(" (")
            .and_then(|(_, rest)| rest.split_once(" only in the cache"))
            .unwrap_or_else(|| panic!("{text}"))
            .0,
    );
    let shared_bytes = between("only in the cache, ", " shared with images");
    let df = between("not shared with images (", "), the shared ones");
    // `system df` counts the private records only; `buildx du` counts them all.
    let close = |a: u64, b: u64| a.abs_diff(b) <= a.max(b) / 100 + 1_000_000;
    assert!(close(df, private_bytes), "{usage}");
    assert!(
        close(usage.total_bytes, shared_bytes + private_bytes),
        "{usage}"
    );
    assert!(text.starts_with("build cache: "), "{text}");
    assert!(text.contains("`docker system df` counts only the records not shared with images"));
}

#[test]
fn prune_project_removes_only_the_records_of_the_projects_dockerfile() {
    let _turn = engine_cache_turn();
    let runner = e2e::engine();
    let name = run_unique("bkl-project-prune");
    let ours = make_cache_record(&runner, &name);
    let theirs = make_cache_record(&runner, &run_unique("bkl-other-project"));
    let project = tempfile::tempdir().unwrap();
    let dockerfile = project.path().join("Dockerfile");
    fs_write(&dockerfile, &format!("FROM scratch\nCOPY {name}.txt /\n"));
    let id_of = |description: &str| {
        only_record(
            &runner,
            &Prune::new().filter(format!("description={description}")),
            description,
        )
    };
    let (our_id, their_id) = (id_of(&ours), id_of(&theirs));

    let dry = runner.clone().dry_run(true).dry_run_queries(true);
    let plan = Prune::new().dockerfile(&dockerfile).run(&dry).unwrap();
    assert_eq!(ids(&plan), vec![our_id.clone()], "{plan}");
    assert_eq!(
        dry.recorded().commands().last().unwrap().join(" "),
        format!("docker buildx prune --force --filter id=^({our_id})$")
    );

    Prune::new().dockerfile(&dockerfile).run(&runner).unwrap();
    let after = ids(&predicted(&Prune::new(), &runner).unwrap());
    assert!(!after.contains(&our_id), "our record is gone");
    assert!(
        after.contains(&their_id),
        "the other project's record stays"
    );
    let _ = Prune::new()
        .filter(format!("id=^({their_id})$"))
        .run(&runner);
}
