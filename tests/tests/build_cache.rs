//! Build cache usage and pruning against the real engine: `docker system df` and
//! `docker buildx du` parsed into typed usage, and a prune (dry run, then real) of a cache
//! record this test made and nothing else.

use buildkit_lib::plan::Step as _;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use buildkit_lib::validate::cache::{self, Prune, UsageKind};
use buildkit_lib::{Cmd, Runner};

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
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
                .arg_path(dir.path()),
        )
        .unwrap();
    format!("[1/1] COPY {file} /")
}

#[test]
fn system_df_is_typed_usage() {
    let _turn = engine_cache_turn();
    let runner = e2e::engine();
    let usage = cache::system_df(&runner).unwrap();
    let kinds: Vec<&UsageKind> = usage.rows.iter().map(|r| &r.kind).collect();
    assert_eq!(
        kinds,
        vec![
            &UsageKind::Images,
            &UsageKind::Containers,
            &UsageKind::Volumes,
            &UsageKind::BuildCache
        ]
    );
    let images = usage.get(&UsageKind::Images).unwrap();
    assert!(images.count >= 1, "the engine holds the base images");
    assert!(images.size_bytes > 1_000_000);
    assert!(images.reclaimable_bytes <= images.size_bytes);
    eprintln!("{usage}");
}

#[test]
fn buildx_du_and_a_targeted_prune() {
    let _turn = engine_cache_turn();
    let runner = e2e::engine();
    let name = run_unique("cache-record");
    let description = make_cache_record(&runner, &name);

    // `buildx du`: the record, its size and creation time.
    let usage = cache::buildx_du(&runner, None).unwrap();
    let ours = usage
        .records
        .iter()
        .find(|r| r.description == description)
        .unwrap_or_else(|| panic!("no cache record `{description}` in buildx du"))
        .clone();
    assert_eq!(ours.kind, "regular");
    assert!(ours.size_bytes >= name.len() as u64 * 200, "{ours:?}");
    assert!((now() - ours.created_at.unwrap()).abs() < 600, "{ours:?}");
    assert!(usage.total_bytes >= ours.size_bytes);
    assert!(usage
        .by_kind()
        .iter()
        .any(|(k, n, _)| k == "regular" && *n >= 1));

    // The same record from `system df --verbose`, with its last use.
    let records = cache::cache_records(&runner).unwrap();
    let same = records.iter().find(|r| r.id == ours.id).unwrap();
    assert_eq!(same.description, description);
    assert!((now() - same.last_used_at.unwrap()).abs() < 600);

    let only_ours = Prune::new().filter(format!("id={}", ours.id));
    // Unused for a day: too fresh, nothing would go.
    let aged = only_ours.clone().until(Duration::from_secs(86_400));
    assert!(aged.dry_run(&runner).unwrap().records.is_empty());
    // Through the named builder (`buildx du`, relative times) the prediction agrees.
    let named = only_ours.clone().builder("default");
    let plan = named.dry_run(&runner).unwrap();
    assert_eq!(plan.records.len(), 1);
    assert_eq!(plan.records[0].id, ours.id);
    let named_aged = named.clone().until(Duration::from_secs(86_400));
    assert!(named_aged.dry_run(&runner).unwrap().records.is_empty());

    // A dry run that may query lists the record and removes nothing.
    let dry = e2e::engine().dry_run(true).dry_run_queries(true);
    let result = only_ours.run(&dry).unwrap();
    assert_eq!(result.reclaimed_bytes, 0);
    assert_eq!(
        result
            .plan
            .records
            .iter()
            .map(|r| r.id.as_str())
            .collect::<Vec<_>>(),
        vec![ours.id.as_str()]
    );
    assert_eq!(
        dry.commands().last().unwrap().join(" "),
        format!("docker buildx prune --force --filter id={}", ours.id)
    );
    let still = cache::buildx_du(&runner, None).unwrap();
    assert!(still.records.iter().any(|r| r.id == ours.id));

    // The real prune removes exactly it and reports the bytes.
    let result = only_ours.run(&runner).unwrap();
    assert_eq!(result.plan.records.len(), 1);
    assert_eq!(result.reclaimed_bytes, ours.size_bytes);
    let after = cache::buildx_du(&runner, None).unwrap();
    assert!(
        !after.records.iter().any(|r| r.id == ours.id),
        "the record is still there after the prune"
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
    let usage = cache::cache_usage(&runner, None).unwrap();
    assert_eq!(df_calls(work.path()), 3, "tried three times");
    assert_eq!(usage.system_df_bytes, None);
    assert_eq!(
        usage.warnings,
        [
            "`docker system df` did not answer: Error response from daemon: container 3f2a9c1d: \
          driver \"overlay2\" failed to compute size: Removal In Progress"
        ]
    );
    assert_eq!((usage.records, usage.total_bytes), (1, 3_055_000));

    // Passing on its own: the second try answers.
    let work = tempfile::tempdir().unwrap();
    let fake = fake_docker(
        work.path(),
        &format!(
            "if [ \"$n\" -lt 2 ]; then {REMOVAL}; fi\necho '{{\"Active\":\"0\",\"Reclaimable\":\"0B\",\"Size\":\"0B\",\"TotalCount\":\"1\",\"Type\":\"Build Cache\"}}'"
        ),
    );
    let runner = e2e::runner().env("PATH", fake.path_env());
    let usage = cache::cache_usage(&runner, None).unwrap();
    assert_eq!(df_calls(work.path()), 2);
    assert_eq!(usage.system_df_bytes, Some(0));
    assert!(usage.warnings.is_empty());

    // An error that is not transient still fails `system_df` at once.
    let work = tempfile::tempdir().unwrap();
    let fake = fake_docker(work.path(), "echo 'permission denied' >&2; exit 1");
    let runner = e2e::runner().env("PATH", fake.path_env());
    assert!(cache::system_df(&runner).is_err());
    assert_eq!(df_calls(work.path()), 1);
}

#[test]
fn cache_usage_reconciles_system_df_and_buildx_du_on_the_engine() {
    let _turn = engine_cache_turn();
    let runner = e2e::engine();
    let usage = cache::cache_usage(&runner, None).unwrap();
    let df = usage.system_df_bytes.expect("system df answered");
    // `system df` counts the private records only; `buildx du` counts them all.
    let close = |a: u64, b: u64| a.abs_diff(b) <= a.max(b) / 100 + 1_000_000;
    assert!(close(df, usage.private_bytes), "{usage}");
    assert!(
        close(usage.total_bytes, usage.shared_bytes + usage.private_bytes),
        "{usage}"
    );
    let text = usage.to_string();
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
    let records = cache::cache_records(&runner).unwrap();
    let id_of = |description: &str| {
        records
            .iter()
            .find(|r| r.description == description)
            .map(|r| r.id.clone())
            .unwrap_or_else(|| panic!("no record {description}"))
    };
    let (our_id, their_id) = (id_of(&ours), id_of(&theirs));

    let dry = runner.clone().dry_run(true).dry_run_queries(true);
    let plan =
        cache::prune_project(&dry, std::slice::from_ref(&dockerfile), &Prune::default()).unwrap();
    assert_eq!(
        plan.plan
            .records
            .iter()
            .map(|r| r.id.clone())
            .collect::<Vec<_>>(),
        vec![our_id.clone()]
    );
    assert_eq!(
        dry.commands().last().unwrap().join(" "),
        format!("docker buildx prune --force --filter id=^({our_id})$")
    );

    cache::prune_project(&runner, &[dockerfile], &Prune::default()).unwrap();
    let after: Vec<String> = cache::cache_records(&runner)
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert!(!after.contains(&our_id), "our record is gone");
    assert!(
        after.contains(&their_id),
        "the other project's record stays"
    );
    let _ = runner.capture(
        &Prune::new()
            .filter(cache::id_filter(&[&their_id]))
            .command(),
    );
}
