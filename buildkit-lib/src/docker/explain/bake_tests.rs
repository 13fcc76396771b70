//! A bake's targets explained one by one, on progress recorded from `docker buildx bake
//! --progress=rawjson` of two targets sharing a stage (buildx 0.29.1 and 0.13.1).

use std::path::Path;

use super::bake::{build_of, target_vertexes};
use super::{explain, CacheInputs, Cause, ProgressReader};
use crate::docker::bake::BakeTarget;
use crate::docker::build::SecretSource;
use crate::docker::cache::CacheKind;

const DOCKERFILE: &str = include_str!("testdata/Dockerfile.bake");
const TWO: &str = include_str!("testdata/bake-two-targets.rawjson");
const TWO_OLDEST: &str = include_str!("testdata/bake-two-targets-oldest.rawjson");

fn names() -> Vec<String> {
    vec!["web".to_string(), "api".to_string()]
}

fn target(stage: &str) -> BakeTarget {
    BakeTarget {
        context: Some(".".into()),
        target: Some(stage.into()),
        tags: vec![format!("why2bake-{stage}:1")],
        output: vec!["type=docker".into()],
        ..BakeTarget::default()
    }
}

#[test]
fn each_target_gets_its_own_vertexes_and_the_stage_they_share() {
    for progress in [TWO, TWO_OLDEST] {
        let (reader, _) = ProgressReader::read_all(progress.as_bytes());
        let web: Vec<String> = target_vertexes(reader.vertexes(), "web", &names())
            .into_iter()
            .map(|v| v.name)
            .collect();
        for wanted in [
            "[web 1/2] COPY web.txt /web.txt",
            "[web 2/2] RUN cat /web.txt",
            "[base 2/2] RUN echo base-19194 > /a",
            "exporting to image",
        ] {
            assert!(web.iter().any(|n| n == wanted), "{wanted} not in {web:#?}");
        }
        assert!(web.iter().all(|n| !n.contains("echo api")), "{web:#?}");
        let api: Vec<String> = target_vertexes(reader.vertexes(), "api", &names())
            .into_iter()
            .map(|v| v.name)
            .collect();
        assert!(
            api.iter().any(|n| n == "[api 1/1] RUN echo api > /x"),
            "{api:#?}"
        );
        assert!(api
            .iter()
            .any(|n| n == "[base 2/2] RUN echo base-19194 > /a"));
        assert!(api.iter().all(|n| !n.contains("web.txt")), "{api:#?}");
        // One target: buildx names nothing after it, and everything is its own.
        let one = target_vertexes(reader.vertexes(), "web", &["web".to_string()]);
        assert_eq!(one.len(), reader.vertexes().len());
    }
}

#[test]
fn a_target_is_explained_as_a_build_of_it_would_be() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("Dockerfile"), DOCKERFILE).unwrap();
    std::fs::write(dir.path().join("web.txt"), "hello\n").unwrap();
    let build = build_of(dir.path(), &target("web"), None).unwrap();
    let inputs = CacheInputs::of_build(&build, None).unwrap();
    let (reader, _) = ProgressReader::read_all(TWO.as_bytes());
    let vertexes = target_vertexes(reader.vertexes(), "web", &names());
    let e = explain(None, &inputs, &vertexes);
    let rows: Vec<(&str, Option<usize>, bool)> = e
        .rows
        .iter()
        .map(|r| (r.stage.as_str(), r.line, r.rebuilt()))
        .collect();
    assert_eq!(
        rows,
        [
            ("base", Some(2), true),
            ("web", Some(5), true),
            ("web", Some(6), true)
        ],
        "{e}"
    );
    assert_eq!(e.rows[0].cause, Some(Cause::NoPreviousRecord), "{e}");

    // The next bake, with web.txt changed: its COPY names it.
    std::fs::write(dir.path().join("web.txt"), "changed\n").unwrap();
    let current = CacheInputs::of_build(&build, Some(&inputs)).unwrap();
    let e = explain(Some(&inputs), &current, &vertexes);
    assert_eq!(
        e.rows[1].cause,
        Some(Cause::FilesChanged {
            files: vec!["web.txt".into()]
        }),
        "{e}"
    );
}

#[test]
fn a_target_reads_its_paths_from_the_bakes_folder() {
    let dir = Path::new("/work/app/target");
    let t = BakeTarget {
        context: Some("../src".into()),
        dockerfile: Some("docker/Dockerfile".into()),
        target: Some("runtime".into()),
        args: [("A".to_string(), "1".to_string())].into(),
        contexts: [
            ("meta".to_string(), "meta".to_string()),
            ("base".to_string(), "docker-image://busybox".to_string()),
        ]
        .into(),
        secret: vec![
            "id=tok,src=secrets/tok".into(),
            "id=env_tok,env=TOKEN".into(),
        ],
        cache_from: vec!["type=registry,ref=r.example/app:cache".into()],
        cache_to: vec!["type=registry,ref=r.example/app:cache,mode=max".into()],
        ..BakeTarget::default()
    };
    let b = build_of(dir, &t, Some("farm")).unwrap();
    assert_eq!(b.get_context(), dir.join("../src"));
    assert_eq!(b.dockerfile_path(), dir.join("../src/docker/Dockerfile"));
    assert_eq!(b.get_target(), Some("runtime"));
    assert_eq!(b.get_builder(), Some("farm"));
    assert_eq!(
        b.get_build_contexts()["meta"],
        dir.join("meta").display().to_string()
    );
    assert_eq!(b.get_build_contexts()["base"], "docker-image://busybox");
    assert_eq!(
        b.secrets[0].source,
        SecretSource::File(dir.join("secrets/tok"))
    );
    assert_eq!(b.secrets[1].source, SecretSource::Env("TOKEN".into()));
    assert_eq!(b.cache_from[0].kind(), CacheKind::Registry);
    assert!(b.cache_to[0].to_to_arg().contains("mode=max"));
    // Not explained: an inline Dockerfile, a remote context.
    let inline = BakeTarget {
        dockerfile_inline: Some("FROM scratch\n".into()),
        ..BakeTarget::default()
    };
    assert!(build_of(dir, &inline, None).is_none());
    let remote = BakeTarget {
        context: Some("https://github.com/o/r.git".into()),
        ..BakeTarget::default()
    };
    assert!(build_of(dir, &remote, None).is_none());
}
