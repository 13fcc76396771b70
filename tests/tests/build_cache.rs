//! Build cache usage and pruning against the real engine: `docker system df` and
//! `docker buildx du` parsed into typed usage, and a prune (dry run, then real) of a cache
//! record this test made and nothing else.

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
    let runner = e2e::engine();
    let name = e2e::unique("cache-record");
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

    let only_ours = Prune {
        filters: vec![format!("id={}", ours.id)],
        ..Prune::default()
    };
    // Unused for a day: too fresh, nothing would go.
    let aged = Prune {
        until: Some(Duration::from_secs(86_400)),
        ..only_ours.clone()
    };
    assert!(aged.dry_run(&runner).unwrap().records.is_empty());
    // Through the named builder (`buildx du`, relative times) the prediction agrees.
    let named = Prune {
        builder: Some("default".into()),
        ..only_ours.clone()
    };
    let plan = named.dry_run(&runner).unwrap();
    assert_eq!(plan.records.len(), 1);
    assert_eq!(plan.records[0].id, ours.id);
    let named_aged = Prune {
        until: Some(Duration::from_secs(86_400)),
        ..named.clone()
    };
    assert!(named_aged.dry_run(&runner).unwrap().records.is_empty());

    // A dry run lists the record and removes nothing.
    let dry = e2e::engine().dry_run(true);
    let result = only_ours.run(&dry).unwrap();
    assert!(result.dry_run);
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
    assert!(!result.dry_run);
    assert_eq!(result.plan.records.len(), 1);
    assert_eq!(result.reclaimed_bytes, ours.size_bytes);
    let after = cache::buildx_du(&runner, None).unwrap();
    assert!(
        !after.records.iter().any(|r| r.id == ours.id),
        "the record is still there after the prune"
    );
}
