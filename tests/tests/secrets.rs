//! Sentinel secrets of every shape (a multi-line PEM-style file, spaces, quotes and
//! regex characters) go through a build (file, env and value secrets whose `RUN` prints them), a
//! push, a smoke test's environment and a failing build; none of their text may appear
//! in the terminal, any log, `report.json`, the errors, the image history or its config.

use std::path::Path;
use std::process::Command;

use buildkit_lib::Cmd;

/// Every line of every sentinel, as they could surface in line-wise output.
fn sentinel_lines(secrets: &[&str]) -> Vec<String> {
    secrets
        .iter()
        .flat_map(|s| s.lines())
        .map(str::trim)
        .filter(|l| l.len() >= 4)
        .map(str::to_string)
        .collect()
}

fn files_under(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(files_under(&path));
        } else {
            out.push(path);
        }
    }
    out
}

#[test]
fn sentinel_secrets_never_leak_anywhere() {
    let engine = e2e::engine();
    let suffix = e2e::unique("s");
    let pem = format!(
        "-----BEGIN SENTINEL KEY {suffix}-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC{suffix}\n\
         bGluZSB0d28gb2YgdGhlIHNlbnRpbmVs {suffix}\n-----END SENTINEL KEY {suffix}-----\n"
    );
    let token = format!("tok en with spaces $HOME *.?[a-z]+ (x)|{suffix}");
    let value = format!("held value {suffix}\nits 2nd line ${{x}} `y` {suffix}");
    let password = format!("db pass 'quoted' \"double\" {suffix}\nsecond line {suffix}");
    let dir = tempfile::tempdir().unwrap();
    let pem_file = dir.path().join("key.pem");
    std::fs::write(&pem_file, &pem).unwrap();
    let target = dir.path().join("target");
    let image = format!("{}/leakprobe-{suffix}:test", e2e::REGISTRY);

    let out = Command::new(env!("CARGO_BIN_EXE_leak_probe"))
        .args([target.to_str().unwrap(), &image, pem_file.to_str().unwrap()])
        .env("DOCKER_HOST", e2e::docker_host())
        .env("LEAK_TOKEN", &token)
        .env("LEAK_VALUE", &value)
        .env("LEAK_DB_PASSWORD", &password)
        .output()
        .expect("run leak_probe");
    let terminal = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let history = engine
        .capture(&Cmd::new("docker").args(["history", "--no-trunc", &image]))
        .expect("docker history")
        .stdout;
    let inspect = engine
        .capture(&Cmd::new("docker").args(["image", "inspect", &image]))
        .expect("docker image inspect")
        .stdout;
    let _ = engine.capture(&Cmd::new("docker").args(["rmi", "--force", &image]));

    // The run did what it should: the good steps passed, the failing build failed.
    assert_eq!(out.status.code(), Some(1), "{terminal}");
    let report = std::fs::read_to_string(target.join("buildkit/leak/report.json"))
        .unwrap_or_else(|e| panic!("no report.json ({e}):\n{terminal}"));
    let report: serde_json::Value = serde_json::from_str(&report).unwrap();
    let statuses: Vec<(String, String)> = report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["name"].as_str().unwrap().to_string(),
                s["status"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        statuses,
        [
            ("build", "ok"),
            ("push", "ok"),
            ("smoke", "ok"),
            ("fails", "failed")
        ]
        .map(|(a, b)| (a.to_string(), b.to_string())),
        "{terminal}"
    );
    // The RUN steps did print the secrets (masked), so masking was really exercised.
    assert!(terminal.contains("***"), "{terminal}");
    assert!(
        terminal.contains("exit code: 7") || terminal.contains("exit 7"),
        "{terminal}"
    );

    // The cause is said once: the failing step's log is named once, not twice.
    let fails_log = target.join("buildkit/leak/logs/fails.log");
    assert_eq!(
        terminal.matches(fails_log.to_str().unwrap()).count(),
        1,
        "{terminal}"
    );
    // buildx says the cause in its own output; the error adds no second copy of it.
    let streamed = terminal
        .lines()
        .filter(|l| l.starts_with("[fails] ") && l.contains("exit code: 7"))
        .count();
    assert!(streamed > 0, "{terminal}");
    assert_eq!(
        terminal.matches("exit code: 7").count(),
        streamed,
        "{terminal}"
    );

    let mut places: Vec<(String, String)> = vec![
        ("terminal".into(), terminal),
        ("docker history --no-trunc".into(), history),
        ("docker image inspect".into(), inspect),
    ];
    for file in files_under(&target) {
        let text = String::from_utf8_lossy(&std::fs::read(&file).unwrap()).into_owned();
        places.push((file.display().to_string(), text));
    }
    assert!(places.iter().any(|(p, _)| p.ends_with("report.json")));
    assert!(places.iter().any(|(p, _)| p.ends_with("smoke.log")));
    // The smoke test's container printed its password; the report kept it masked.
    assert!(places
        .iter()
        .any(|(p, t)| p.ends_with("smoke.log") && t.contains("password is ***")));
    for needle in sentinel_lines(&[&pem, &token, &password, &value]) {
        for (place, text) in &places {
            assert!(
                !text.contains(&needle),
                "secret text {needle:?} leaked into {place}:\n{text}"
            );
        }
    }
}
