//! Unit tests of endpoints, probes, platform builds and the merge.

use super::*;

#[test]
fn endpoints_parse() {
    assert_eq!(
        Endpoint::parse("unix:///run/a.sock").unwrap(),
        Endpoint::Host("unix:///run/a.sock".into())
    );
    assert_eq!(
        Endpoint::parse("context:arm").unwrap(),
        Endpoint::Context("arm".into())
    );
    assert_eq!(
        Endpoint::parse("builder:farm").unwrap(),
        Endpoint::Builder("farm".into())
    );
    let e = Endpoint::parse("arm-box").unwrap_err().to_string();
    assert!(
        e.starts_with("`arm-box` is not an engine or builder"),
        "{e}"
    );
    let e = PlatformEndpoint::parse("linux/ARM64=context:x").unwrap_err();
    assert!(e.to_string().contains("is not a platform"), "{e}");
    let e = PlatformEndpoint::parse("linux/arm64").unwrap_err();
    assert!(e.to_string().contains("is not PLATFORM=ENDPOINT"), "{e}");
}

#[test]
fn probe_reads_driver_platforms_and_errors() {
    let ok = "Name:   eng2\nDriver: docker\n\nNodes:\nName:             eng2\n\
              Endpoint:         eng2\nStatus:           running\n\
              Platforms:        linux/amd64, linux/amd64/v2, linux/arm64\n";
    let p = BuilderProbe::parse(ok).unwrap();
    assert_eq!(p.driver, "docker");
    assert_eq!(
        p.platforms,
        ["linux/amd64", "linux/amd64/v2", "linux/arm64"]
    );
    assert!(!p.pushes_by_digest());
    let down = "Name:   dead\nDriver: \nError:  Cannot connect to the Docker daemon at \
                unix:///x.sock. Is the docker daemon running?\n";
    assert_eq!(
        BuilderProbe::parse(down).unwrap_err(),
        "Cannot connect to the Docker daemon at unix:///x.sock. Is the docker daemon running?"
    );
    let remote = "Name: farm\nDriver: remote\nNodes:\nName: farm0\nStatus: inactive\n";
    assert!(BuilderProbe::parse(remote).unwrap().pushes_by_digest());
}

#[test]
fn platform_tags_stay_valid() {
    let f = FanOut::of(
        Build {
            tags: vec!["127.0.0.1:5000/app:1.2.0".into()],
            ..Build::new(".")
        },
        Vec::new(),
    );
    assert_eq!(
        f.platform_tag("linux/arm/v7").unwrap(),
        "127.0.0.1:5000/app:1.2.0-linux-arm-v7"
    );
    let long = FanOut::of(
        Build {
            tags: vec![format!("r.example/app:{}", "x".repeat(128))],
            ..Build::new(".")
        },
        Vec::new(),
    );
    let tag = long.platform_tag("linux/arm64").unwrap();
    let tag = tag.rsplit_once(':').unwrap().1;
    assert_eq!(tag.len(), MAX_TAG_LEN);
    assert!(tag.ends_with("-linux-arm64"));
}

#[test]
fn each_platform_keeps_its_own_explanation_record() {
    let build = Build::new(".")
        .tag("127.0.0.1:5000/app:1.2.0")
        .explain_record("target/why/image.json");
    let fan = FanOut::of(
        build,
        vec![
            PlatformEndpoint::parse("linux/amd64=unix:///run/a.sock").unwrap(),
            PlatformEndpoint::parse("linux/arm/v7=unix:///run/b.sock").unwrap(),
        ],
    );
    let records: Vec<Option<std::path::PathBuf>> = fan
        .platforms
        .iter()
        .map(|p| fan.platform_build(p, true).unwrap().explain_record)
        .collect();
    assert_eq!(
        records,
        [
            Some("target/why/image-linux-amd64.json".into()),
            Some("target/why/image-linux-arm-v7.json".into()),
        ]
    );
    // Without a record, none is made up.
    let plain = FanOut::of(Build::new(".").tag("127.0.0.1:5000/app:1"), Vec::new());
    let p = PlatformEndpoint::parse("linux/amd64=unix:///run/a.sock").unwrap();
    assert_eq!(
        plain.platform_build(&p, false).unwrap().explain_record,
        None
    );
}
