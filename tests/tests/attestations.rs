//! Provenance attestations on the real engine and the loopback registry: attached by the
//! build, read back after the push into typed values, and the SBOM scanner that cannot be
//! pulled here named as such.

use std::fs;

use buildkit_lib::docker::{Build, Output};
use buildkit_lib::plan::Step;
use e2e::registry;

fn context(extra: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    fs::write(
        dir.path().join("Dockerfile"),
        format!(
            "FROM {}\nARG CHANNEL\nCOPY app.txt /app.txt\n",
            e2e::BUSYBOX_IMAGE
        ),
    )
    .unwrap();
    fs::write(dir.path().join("app.txt"), extra).unwrap();
    dir
}

fn pushed(provenance: &str) -> (Build, String, tempfile::TempDir) {
    let dir = context(&e2e::unique("attest"));
    let reference = format!(
        "{}/buildkit-test/attest:{}",
        e2e::REGISTRY,
        e2e::unique("t")
    );
    // The loopback registry (Debian's docker-registry 2.8) now and then answers a HEAD of
    // a tag being pushed with a 500 ("invalid checksum digest format") while the oldest
    // engine's docker driver pushes it a second time: a transient registry error, which
    // is what `retry_push` is for.
    let build = Build::new(dir.path())
        .tag(reference.clone())
        .output(Output::Push)
        .attest(provenance)
        .build_arg("CHANNEL", "stable-channel")
        .retry_push(3, std::time::Duration::from_secs(1));
    (build, reference, dir)
}

#[test]
fn max_provenance_is_read_back_with_the_build_args_it_records() {
    let (build, reference, _dir) = pushed("type=provenance,mode=max");
    let log_dir = tempfile::tempdir().unwrap();
    let log = log_dir.path().join("build.log");
    build.run(&e2e::engine().log_to(&log)).unwrap();
    let found = registry::attestations(&e2e::engine(), &reference).unwrap();
    // The attestation manifest is not a platform of the image.
    assert_eq!(found.platforms, ["linux/amd64"]);
    assert_eq!(found.attestation_manifests, 1);
    assert!(found.provenance.contains_key("linux/amd64"), "{found:?}");
    assert_eq!(
        found
            .build_args("linux/amd64")
            .get("CHANNEL")
            .map(String::as_str),
        Some("stable-channel")
    );
    assert!(found.sbom.is_empty());
    // The warning that values are recorded reaches the step's log.
    let text = fs::read_to_string(&log).unwrap();
    assert!(
        text.contains("`mode=max` provenance records the values of the build args `CHANNEL`"),
        "{text}"
    );
}

#[test]
fn provenance_off_pushes_a_plain_image() {
    let (build, reference, _dir) = pushed("type=provenance,disabled=true");
    build.run(&e2e::engine()).unwrap();
    let found = registry::attestations(&e2e::engine(), &reference).unwrap();
    assert_eq!(found.attestation_manifests, 0);
    assert!(found.provenance.is_empty());
    assert_eq!(found.platforms, ["linux/amd64"]);
}

#[test]
fn min_provenance_records_no_build_arg_values() {
    let (build, reference, _dir) = pushed("type=provenance,mode=min");
    build.run(&e2e::engine()).unwrap();
    let found = registry::attestations(&e2e::engine(), &reference).unwrap();
    assert_eq!(found.attestation_manifests, 1);
    assert!(found.provenance.contains_key("linux/amd64"), "{found:?}");
    assert_eq!(found.build_args("linux/amd64").get("CHANNEL"), None);
}

#[test]
fn an_sbom_whose_scanner_cannot_be_pulled_says_how_to_name_another() {
    let (build, _reference, _dir) = pushed("type=provenance,mode=min");
    let err = format!(
        "{:#}",
        build.attest("type=sbom").run(&e2e::engine()).unwrap_err()
    );
    assert!(
        err.contains("cannot pull BuildKit's SBOM scanner image")
            && err.contains("type=sbom,generator=IMAGE"),
        "{err}"
    );
}
