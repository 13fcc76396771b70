//! `cargo xtask bench`: speed and memory figures, each beside its baseline from the same run.
//!
//! Every figure is measured on the real engine, repeated (a warm-up, then at least five
//! runs; fewer with `--quick`), and reported as the median with its spread and the ratio
//! to a baseline measured in the same run: these machines are shared and noisy, so
//! absolute times alone mean little. Results go to `target/buildkit/bench/bench.json`.
//! Baselines start the raw tools directly (not through the library's runner), which is
//! the point of comparing.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use buildkit_lib::cmd::Echo;
use buildkit_lib::docker::Build;
use buildkit_lib::plan::Step;
use buildkit_lib::{Cmd, Runner};
use serde_json::json;

use crate::build::webapp_pipeline;

mod explain;
mod real_size;

/// One figure of the benchmark.
#[derive(Debug, Clone)]
struct Entry {
    name: &'static str,
    value: f64,
    unit: &'static str,
    spread: f64,
    baseline: String,
    baseline_value: f64,
    target: String,
    ok: bool,
}

impl Entry {
    fn ratio(&self) -> f64 {
        if self.baseline_value > 0.0 {
            self.value / self.baseline_value
        } else {
            0.0
        }
    }
}

struct Bench {
    root: PathBuf,
    runner: Runner,
    runs: usize,
    entries: Vec<Entry>,
}

const FIGURES: &[&str] = &[
    "runner_overhead",
    "noop_build",
    "noop_real",
    "noop_50k",
    "one_file_changed",
    "ci_cold_with_registry_cache",
    "package_incremental",
    "package_noop",
    "package_cold",
    "seed_script",
    "parallel_pipeline",
    "log_stream",
    "context_audit",
    "xtask_compile",
    "fanout",
    "fanout_builders",
    "explain_overhead",
];

/// `cargo xtask bench [--quick] [--only NAME]`.
pub fn run(base: &Runner, root: &Path, flags: &crate::flags::Bench) -> Result<u8> {
    let only = flags.only.as_deref();
    if let Some(only) = only {
        if !FIGURES.contains(&only) {
            return Err(crate::flags::UsageError(format!(
                "unknown figure `{only}` (one of: {})",
                FIGURES.join(", ")
            ))
            .into());
        }
    }
    if flags.dry_run {
        for name in FIGURES.iter().filter(|n| only.is_none_or(|o| o == **n)) {
            println!("would measure {name}");
        }
        return Ok(0);
    }
    let runner = base.clone().echo(Echo::Silent);
    // The fan-out figures use the second engine, arm64 emulation and the BuildKit daemons.
    if only.is_none_or(|o| o.starts_with("fanout")) {
        crate::engine::ensure_components(&runner, root, &["second", "arm64", "buildkit"])?;
    } else if only.is_some_and(|o| OWN_BUILDER_FIGURES.contains(&o)) {
        // The cold runs' own builder: the BuildKit image, the base images in the registry.
        crate::engine::ensure_components(&runner, root, &["buildkit"])?;
    }
    let mut bench = Bench {
        root: root.to_path_buf(),
        runner,
        runs: if flags.quick { 3 } else { 5 },
        entries: Vec::new(),
    };
    for name in FIGURES {
        if only.is_some_and(|o| o != *name) {
            continue;
        }
        eprintln!("bench: measuring {name}...");
        let result = match *name {
            "runner_overhead" => bench.runner_overhead(),
            "noop_build" => bench.noop_build(),
            "noop_real" => bench.noop_real(),
            "noop_50k" => bench.noop_50k(),
            "one_file_changed" => bench.one_file_changed(),
            "ci_cold_with_registry_cache" => bench.ci_cold_with_registry_cache(),
            "package_incremental" => bench.package_incremental(),
            "package_noop" => bench.package_noop(),
            "package_cold" => bench.package_cold(),
            "seed_script" => bench.seed_script(),
            "parallel_pipeline" => bench.parallel_pipeline(),
            "log_stream" => bench.log_stream(),
            "context_audit" => bench.context_audit(),
            "xtask_compile" => bench.xtask_compile(),
            "fanout" => bench.fanout(),
            "fanout_builders" => bench.fanout_builders(),
            "explain_overhead" => bench.explain_overhead(),
            _ => unreachable!("figures are listed above"),
        };
        if let Err(e) = result {
            eprintln!("bench: {name} could not be measured: {e:#}");
            return Ok(1);
        }
    }
    print_table(&bench.entries);
    let out = root.join("target/buildkit/bench/bench.json");
    let json: Vec<_> = bench
        .entries
        .iter()
        .map(|e| {
            json!({
                "name": e.name, "value": round(e.value), "unit": e.unit, "spread": round(e.spread),
                "baseline": e.baseline, "baseline_value": round(e.baseline_value),
                "ratio": round(e.ratio()), "target": e.target, "ok": e.ok,
            })
        })
        .collect();
    let text = serde_json::to_string_pretty(&json)?;
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    std::fs::write(&out, format!("{text}\n"))
        .with_context(|| format!("cannot write {}", out.display()))?;
    eprintln!("bench: wrote {}", out.display());
    Ok(u8::from(bench.entries.iter().any(|e| !e.ok)))
}

/// One platform of the fan-out figure's direct side.
struct DirectPlatform {
    argv: Vec<String>,
    tag: String,
    host: String,
    metadata: PathBuf,
}

fn round(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

fn print_table(entries: &[Entry]) {
    println!(
        "| figure | value | spread | baseline | baseline value | ratio | target | ok |\n|---|---:|---:|---|---:|---:|---|---|"
    );
    for e in entries {
        println!(
            "| {} | {:.3} {} | ±{:.3} | {} | {:.3} {} | {:.2} | {} | {} |",
            e.name,
            e.value,
            e.unit,
            e.spread,
            e.baseline,
            e.baseline_value,
            e.unit,
            e.ratio(),
            e.target,
            if e.ok { "yes" } else { "NO" }
        );
    }
}

/// Median and half the range (max - min) / 2 of some samples.
fn stats(samples: &mut [f64]) -> (f64, f64) {
    samples.sort_by(|a, b| a.total_cmp(b));
    let n = samples.len();
    let median = if n % 2 == 1 {
        samples[n / 2]
    } else {
        (samples[n / 2 - 1] + samples[n / 2]) / 2.0
    };
    (median, (samples[n - 1] - samples[0]) / 2.0)
}

fn time<F: FnMut() -> Result<()>>(mut f: F) -> Result<f64> {
    let start = Instant::now();
    f()?;
    Ok(start.elapsed().as_secs_f64())
}

/// Runs a raw command directly (the baseline side), failing on a non-zero exit.
fn raw(cmd: &mut Command) -> Result<()> {
    let status = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .with_context(|| format!("cannot start {cmd:?}"))?;
    if !status.success() {
        bail!("{cmd:?} failed: {status}");
    }
    Ok(())
}

/// Empties the build cache of `builder`, a builder the bench created: never another's.
fn prune_own(builder: &str) -> Result<()> {
    raw(Command::new("docker")
        .args(["buildx", "prune", "--builder", builder, "--all", "--force"])
        .env("DOCKER_HOST", docker_host()))
}

fn docker_host() -> String {
    std::env::var("DOCKER_HOST").unwrap_or_else(|_| crate::engine::PROJECT_DOCKER_HOST.into())
}

/// The rig's BuildKit image, for the `docker-container` builders the bench creates.
fn buildkit_image() -> String {
    std::env::var("BUILDKIT_LIB_BUILDKIT_IMAGE")
        .unwrap_or_else(|_| "buildkit-local/buildkit:v0.25.2".to_string())
}

/// `image` as a BuildKit daemon pulls it: from the rig's loopback registry, where
/// `engine-up.sh up buildkit` pushed the base images (a daemon in a container does not see
/// the engine's image store).
fn in_registry(image: &str) -> String {
    format!("{}/{image}", crate::engine::REGISTRY)
}

/// The figures whose cold runs build on a builder of the bench's own ([`Bench::own_builder`]).
const OWN_BUILDER_FIGURES: &[&str] = &["seed_script", "ci_cold_with_registry_cache"];

impl Bench {
    /// Paired runs of `a` (measured) and `b` (baseline), after one warm-up of each.
    fn paired<A, B>(&self, mut a: A, mut b: B) -> Result<(Vec<f64>, Vec<f64>)>
    where
        A: FnMut() -> Result<()>,
        B: FnMut() -> Result<()>,
    {
        a()?;
        b()?;
        let (mut xs, mut ys) = (Vec::new(), Vec::new());
        for i in 0..self.runs {
            // Alternate which goes first, so drift hits both sides alike.
            if i % 2 == 0 {
                xs.push(time(&mut a)?);
                ys.push(time(&mut b)?);
            } else {
                ys.push(time(&mut b)?);
                xs.push(time(&mut a)?);
            }
        }
        Ok((xs, ys))
    }

    #[allow(clippy::too_many_arguments)]
    fn push(
        &mut self,
        name: &'static str,
        unit: &'static str,
        mut xs: Vec<f64>,
        baseline: &str,
        mut ys: Vec<f64>,
        target: &str,
        ok: impl Fn(f64, f64) -> bool,
    ) -> Result<()> {
        let (value, spread) = stats(&mut xs);
        let (baseline_value, _) = stats(&mut ys);
        let ok = ok(value, baseline_value);
        eprintln!("bench: {name} = {value:.3} {unit} (baseline {baseline_value:.3} {unit})");
        self.entries.push(Entry {
            name,
            value,
            unit,
            spread,
            baseline: baseline.to_string(),
            baseline_value,
            target: target.to_string(),
            ok,
        });
        Ok(())
    }

    /// A `docker-container` builder of the bench's own for `figure`'s cold runs, removed
    /// (container and state volume) when dropped, on an error and on Ctrl-C too.
    ///
    /// A cold run needs an empty build cache, and the engine's builder is the user's: a
    /// `docker builder prune -af` there empties every build cache on the machine and makes
    /// builds running beside the bench fail with `not found`. Nor can a prune be limited to
    /// what the bench made: BuildKit's cache records carry no label (a project tag for
    /// them is an open request, docker/buildx#1065), `docker buildx prune --filter`
    /// selects only by `until`, `id`, `parents`, `type`, `description`, `inuse`,
    /// `mutable`, `shared` and `private`, and a `label=` filter has been ignored by
    /// `docker builder prune`, which then removed everything (docker/cli#2450); records
    /// picked by the bench's Dockerfile steps (`Prune::dockerfile`) are content-addressed and
    /// shared with the user's own builds of the same Dockerfiles, which would lose them
    /// mid-build. A builder the bench creates holds only the bench's cache, so emptying it
    /// (`docker buildx prune --builder NAME --all --force`) is a cold start that touches
    /// nothing else, and both sides of a figure build on it alike.
    fn own_builder(&self, figure: &str) -> Result<buildkit_lib::docker::CreatedBuilder> {
        use buildkit_lib::docker::BuilderCreate;
        BuilderCreate::new()
            .name(format!("bench-{figure}-{}", std::process::id()))
            .driver("docker-container")
            .driver_opt("image", buildkit_image())
            // The loopback registry (base images, the registry cache) is on the host.
            .driver_opt("network", "host")
            .bootstrap(true)
            .create(&self.runner)
            .with_context(|| {
                format!(
                    "the bench's own BuildKit builder for {figure} (start the rig with \
                     `xtask/engine-up.sh up buildkit`)"
                )
            })
    }

    fn webapp_build(&self) -> Build {
        let app = self.root.join("fixtures/webapp");
        let meta = self.root.join("target/buildkit/bench/meta");
        let _ = std::fs::create_dir_all(&meta);
        let _ = std::fs::copy(app.join("version.json"), meta.join("version.json"));
        Build::new(app.clone())
            .dockerfile(app.join("Dockerfile.production"))
            .target("runtime")
            .tag("buildkit-webapp:bench")
            .build_arg("PYTHON_IMAGE", crate::build::PYTHON_IMAGE.to_string())
            .build_context("meta", meta.display().to_string())
            .network("none")
            .output(buildkit_lib::docker::Output::Load)
            .metadata_file(self.root.join("target/buildkit/bench/metadata.json"))
            // The runner's cost alone: the size is read by its own step (one inspect), and
            // BuildKit's record of it is not read (one `docker buildx history inspect`).
            .read_facts(false)
    }

    /// A cached two-engine build (amd64 on the first engine, arm64 on the second),
    /// pushed and merged by `FanOut::run`, against the same commands run directly: both
    /// builds side by side, both pushes side by side, then `imagetools create`. The
    /// library adds one `buildx inspect` per engine (side by side) and reads the merged
    /// index back.
    fn fanout(&mut self) -> Result<()> {
        use buildkit_lib::docker::FanOut;
        use buildkit_lib::docker::Output;
        let dir = self.root.join("target/buildkit/bench/fanout");
        std::fs::create_dir_all(&dir)?;
        std::fs::write(
            dir.join("Dockerfile"),
            "FROM buildkit-local/busybox:latest\nRUN uname -m > /arch\nCMD [\"cat\", \"/arch\"]\n",
        )?;
        let hosts = [docker_host(), crate::engine::second_docker_host()];
        let platforms = ["linux/amd64", "linux/arm64"];
        let tag = format!("{}/buildkit-bench-fanout:1", crate::engine::REGISTRY);
        let fan = FanOut::new(
            Build::new(dir.clone()).tag(tag.clone()).network("none"),
            platforms
                .iter()
                .zip(&hosts)
                .map(|(platform, host)| format!("{platform}={host}")),
        )?;
        let runner = self
            .runner
            .clone()
            .echo(Echo::Quiet)
            .log_to(self.root.join("target/buildkit/bench/logs/fanout.log"));
        // The direct side: the same per-platform builds the fan-out runs on a `docker`
        // driver (loaded, tagged `<tag>-<os>-<arch>`), with a metadata file each for the
        // digest.
        let mut builds = Vec::new();
        for (i, platform) in platforms.iter().enumerate() {
            let metadata = dir.join(format!("metadata-{i}.json"));
            let platform_tag = format!("{tag}-{}", platform.replace('/', "-"));
            let build = Build::new(dir.clone())
                .tag(platform_tag.clone())
                .network("none")
                .platform(*platform)
                .builder("default")
                .output(Output::Load)
                .metadata_file(&metadata);
            builds.push(DirectPlatform {
                argv: build.command().argv(),
                tag: platform_tag,
                host: hosts[i].clone(),
                metadata,
            });
        }
        let repo = format!("{}/buildkit-bench-fanout", crate::engine::REGISTRY);
        let direct = || -> Result<()> {
            let each = |f: &(dyn Fn(&DirectPlatform) -> Result<()> + Sync)| {
                std::thread::scope(|s| {
                    let handles: Vec<_> = builds.iter().map(|b| s.spawn(move || f(b))).collect();
                    handles
                        .into_iter()
                        .map(|h| h.join().map_err(|_| anyhow::anyhow!("thread panicked"))?)
                        .collect::<Result<Vec<()>>>()
                })
            };
            each(&|b| {
                raw(Command::new(&b.argv[0])
                    .args(&b.argv[1..])
                    .env("DOCKER_HOST", &b.host))
            })?;
            each(&|b| {
                raw(Command::new("docker")
                    .args(["push", &b.tag])
                    .env("DOCKER_HOST", &b.host))
            })?;
            let mut merge = Command::new("docker");
            merge.args(["buildx", "imagetools", "create", "--tag", &tag]);
            for b in &builds {
                let v: serde_json::Value =
                    serde_json::from_str(&std::fs::read_to_string(&b.metadata)?)?;
                let digest = v["containerimage.digest"].as_str().context("no digest")?;
                merge.arg(format!("{repo}@{digest}"));
            }
            raw(merge.env("DOCKER_HOST", &hosts[0]))
        };
        let (xs, ys) = self.paired(
            || {
                fan.run(&runner)?;
                Ok(())
            },
            direct,
        )?;
        self.push(
            "fanout",
            "s",
            xs,
            "the same builds, pushes and imagetools create run directly",
            ys,
            "ratio <= 1.3",
            |v, b| v <= b * 1.3,
        )
    }

    /// A cached fan-out over two real BuildKit builders made by the library for the run
    /// (a `remote` builder on the rig's daemon over mutual TLS for amd64, a
    /// `docker-container` builder for arm64 through QEMU), each pushing by digest, merged
    /// by `FanOut::run`; against the same two builds run directly side by side, then
    /// `imagetools create`. Also reports the rig's one-time cost (building BuildKit),
    /// as `xtask/engine-up.sh` recorded it.
    fn fanout_builders(&mut self) -> Result<()> {
        use buildkit_lib::docker::BuilderCreate;
        use buildkit_lib::docker::FanOut;
        use buildkit_lib::docker::Output;
        const STATE: &str = "/var/lib/buildkit-lib/buildkit";
        let var = |k: &str, d: &str| std::env::var(k).unwrap_or_else(|_| d.to_string());
        let endpoint = var("BUILDKIT_LIB_REMOTE_BUILDKIT", "tcp://127.0.0.1:1234");
        let certs = PathBuf::from(var(
            "BUILDKIT_LIB_BUILDKIT_CERTS",
            &format!("{STATE}/certs"),
        ));
        let image = buildkit_image();
        let dir = self.root.join("target/buildkit/bench/fanout-builders");
        std::fs::create_dir_all(&dir)?;
        std::fs::write(
            dir.join("Dockerfile"),
            format!(
                "FROM {}/buildkit-local/busybox:latest\nRUN uname -m > /arch\n\
                 CMD [\"cat\", \"/arch\"]\n",
                crate::engine::REGISTRY
            ),
        )?;
        let runner = self.runner.clone().echo(Echo::Quiet).log_to(
            self.root
                .join("target/buildkit/bench/logs/fanout_builders.log"),
        );
        let id = std::process::id();
        let remote = BuilderCreate::new()
            .name(format!("bench-remote-{id}"))
            .driver("remote")
            .platform("linux/amd64")
            .bootstrap(true)
            .endpoint(endpoint)
            .tls(
                certs.join("ca.pem"),
                certs.join("client-cert.pem"),
                certs.join("client-key.pem"),
            )
            .driver_opt("servername", "127.0.0.1")
            .create(&runner)
            .context("the remote BuildKit builder (start the rig with xtask/engine-up.sh)")?;
        let container = BuilderCreate::new()
            .name(format!("bench-container-{id}"))
            .driver("docker-container")
            .driver_opt("image", image)
            .driver_opt("network", "host")
            .platform("linux/arm64")
            .bootstrap(true)
            .create(&runner)
            .context("the docker-container BuildKit builder")?;
        let tag = format!(
            "{}/buildkit-bench-fanout-builders:1",
            crate::engine::REGISTRY
        );
        let repo = format!("{}/buildkit-bench-fanout-builders", crate::engine::REGISTRY);
        let fan = FanOut::new(
            Build::new(dir.clone()).tag(tag.clone()).network("none"),
            [
                format!("linux/amd64=builder:{}", remote.name()),
                format!("linux/arm64=builder:{}", container.name()),
            ],
        )?;
        // The direct side: the same per-platform builds the fan-out runs (pushed by
        // digest), each with a metadata file for its digest.
        let mut builds = Vec::new();
        for (i, (platform, builder)) in [
            ("linux/amd64", remote.name()),
            ("linux/arm64", container.name()),
        ]
        .into_iter()
        .enumerate()
        {
            let metadata = dir.join(format!("metadata-{i}.json"));
            let build = Build::new(dir.clone())
                .network("none")
                .platform(platform)
                .builder(builder)
                .output(Output::PushByDigest(repo.clone()))
                .metadata_file(&metadata);
            builds.push((build.command().argv(), metadata));
        }
        let host = docker_host();
        let direct = || -> Result<()> {
            std::thread::scope(|s| {
                let handles: Vec<_> = builds
                    .iter()
                    .map(|(argv, _)| {
                        let host = &host;
                        s.spawn(move || {
                            raw(Command::new(&argv[0])
                                .args(&argv[1..])
                                .env("DOCKER_HOST", host))
                        })
                    })
                    .collect();
                handles
                    .into_iter()
                    .map(|h| h.join().map_err(|_| anyhow::anyhow!("thread panicked"))?)
                    .collect::<Result<Vec<()>>>()
            })?;
            let mut merge = Command::new("docker");
            merge.args(["buildx", "imagetools", "create", "--tag", &tag]);
            for (_, metadata) in &builds {
                let v: serde_json::Value =
                    serde_json::from_str(&std::fs::read_to_string(metadata)?)?;
                let digest = v["containerimage.digest"].as_str().context("no digest")?;
                merge.arg(format!("{repo}@{digest}"));
            }
            raw(merge.env("DOCKER_HOST", &host))
        };
        let (xs, ys) = self.paired(
            || {
                fan.run(&runner)?;
                Ok(())
            },
            direct,
        )?;
        drop((remote, container));
        self.push(
            "fanout_builders",
            "s",
            xs,
            "the same builds (push by digest) and imagetools create run directly",
            ys,
            "ratio <= 1.3",
            |v, b| v <= b * 1.3,
        )?;
        // The one-time cost: building buildkitd/buildctl from source, once per machine.
        let recorded = std::fs::read_to_string(format!("{STATE}/build-seconds"))
            .ok()
            .and_then(|t| t.trim().parse::<f64>().ok());
        if let Some(seconds) = recorded {
            self.push(
                "fanout_builders_rig_once",
                "s",
                vec![seconds],
                "(none: once per machine, recorded by engine-up.sh)",
                vec![0.0],
                "< 900 s",
                |v, _| v < 900.0,
            )?;
        }
        Ok(())
    }

    fn runner_overhead(&mut self) -> Result<()> {
        let build = self.webapp_build();
        let argv = build.command().argv();
        let runner = self.runner.clone().echo(Echo::Quiet).log_to(
            self.root
                .join("target/buildkit/bench/logs/runner_overhead.log"),
        );
        let (xs, ys) = self.paired(
            || {
                build.run(&runner)?;
                Ok(())
            },
            || {
                raw(Command::new(&argv[0])
                    .args(&argv[1..])
                    .env("DOCKER_HOST", docker_host()))
            },
        )?;
        self.push(
            "runner_overhead",
            "s",
            xs,
            "the same `docker buildx build` run directly",
            ys,
            "ratio <= 1.05",
            |v, b| v <= b * 1.05,
        )
    }

    fn noop_build(&mut self) -> Result<()> {
        let xtask = std::env::current_exe().context("cannot find the xtask binary")?;
        // Make sure a successful build exists first.
        raw(Command::new(&xtask).args(["build", "--no-smoke"]))?;
        let build = self.webapp_build();
        let argv = build.command().argv();
        let (xs, ys) = self.paired(
            || raw(Command::new(&xtask).args(["build", "--no-smoke"])),
            || {
                raw(Command::new(&argv[0])
                    .args(&argv[1..])
                    .env("DOCKER_HOST", docker_host()))
            },
        )?;
        let report = buildkit_lib::pipeline::Report::load(
            &self.root.join("target/buildkit/build/report.json"),
        )?;
        let image = report.step("image").map(|s| s.status);
        if image != Some(buildkit_lib::pipeline::StepStatus::UpToDate) {
            bail!("the no-op build was not up to date (image step: {image:?})");
        }
        self.push(
            "noop_build",
            "s",
            xs,
            "a fully cached direct `docker buildx build`",
            ys,
            "< 1 s and faster than the baseline",
            |v, b| v < 1.0 && v < b,
        )
    }

    fn seed_script(&mut self) -> Result<()> {
        // The programs the checks run: the tool environment's black and isort, as one run
        // of the checks calls them (the run makes the environment when it is missing).
        let probe = self.runner.clone().with_fresh_record();
        {
            use buildkit_lib::python::{CheckAll, Format, ToolEnv};
            let env = ToolEnv::under(self.root.join("target"));
            let src = self.root.join("fixtures/webapp/src");
            CheckAll::new(
                Format::black([src.clone()]).tools(env.clone()),
                Format::isort([src]).tools(env),
            )
            .run(&probe)?;
        }
        let program = |name: &str| -> Result<String> {
            probe
                .recorded()
                .commands()
                .into_iter()
                .map(|argv| argv[0].clone())
                .find(|p| Path::new(p).file_name() == Some(std::ffi::OsStr::new(name)))
                .with_context(|| format!("the format checks ran no {name}"))
        };
        let (black, isort) = (program("black")?, program("isort")?);
        let build = self.webapp_build();
        // The cold runs build on the bench's own builder (see `own_builder`), both sides.
        let builder = self.own_builder("seed")?;
        let cold_build = build
            .clone()
            .builder(builder.name())
            .build_arg("PYTHON_IMAGE", in_registry(crate::build::PYTHON_IMAGE));
        let write_script = |name: &str, build: &Build| -> Result<PathBuf> {
            let script = format!(
                "set -e\ncd '{root}'\n'{black}' --check fixtures/webapp/src\n'{isort}' --profile black --check-only fixtures/webapp/src\n{build}\ndocker images buildkit-webapp:bench >/dev/null\n",
                root = self.root.display(),
                black = black,
                isort = isort,
                // The command line, shell-escaped: what `Cmd` displays.
                build = build.command(),
            );
            let path = self.root.join("target/buildkit/bench").join(name);
            std::fs::create_dir_all(path.parent().expect("has a parent"))?;
            std::fs::write(&path, script)?;
            Ok(path)
        };
        let script_path = write_script("seed.sh", &build)?;
        let cold_script_path = write_script("seed-cold.sh", &cold_build)?;
        let root = self.root.clone();
        let runner = self.runner.clone();
        let library = move |force: bool, build: &Build| -> Result<()> {
            let mut pipeline =
                buildkit_lib::pipeline::Pipeline::new("bench-seed", root.join("target"));
            let env = buildkit_lib::python::ToolEnv::under(root.join("target"));
            let src = root.join("fixtures/webapp/src");
            let (black, isort) = (
                buildkit_lib::python::Format::black([src.clone()]).tools(env.clone()),
                buildkit_lib::python::Format::isort([src.clone()]).tools(env.clone()),
            );
            pipeline
                .add("format", buildkit_lib::python::CheckAll::new(black, isort))
                .inputs(buildkit_lib::pipeline::Inputs::new().file(&src));
            let b = build.clone();
            pipeline
                .step("image", move |cx| {
                    b.run(&cx.runner)?;
                    Ok(())
                })
                .inputs(buildkit_lib::pipeline::Inputs::new().context(root.join("fixtures/webapp")))
                .output_image("buildkit-webapp:bench");
            pipeline
                .step("size", |cx| {
                    cx.runner.capture(
                        &Cmd::new("docker")
                            .args(["image", "inspect", "buildkit-webapp:bench"])
                            .read_only(),
                    )?;
                    Ok(())
                })
                .after(["image"]);
            pipeline.force(force);
            let report =
                pipeline.run(&runner.clone().session(buildkit_lib::Session::new("bench")))?;
            if !report.ok {
                bail!("the library pipeline failed: {report}");
            }
            Ok(())
        };
        let prune = || prune_own(builder.name());
        let script_run = |path: &Path| {
            raw(Command::new("bash")
                .arg(path)
                .env("DOCKER_HOST", docker_host()))
        };
        // Cold: the bench's own builder emptied before each run, every step runs.
        let (mut xs, mut ys) = (Vec::new(), Vec::new());
        let cold_runs = self.runs.min(3);
        for _ in 0..cold_runs {
            prune()?;
            xs.push(time(|| library(true, &cold_build))?);
            prune()?;
            ys.push(time(|| script_run(&cold_script_path))?);
        }
        builder.remove()?;
        self.push(
            "seed_script_cold",
            "s",
            xs,
            "the seed's shell script (black, isort, docker build, docker images)",
            ys,
            "ratio <= 1.1",
            |v, b| v <= b * 1.1,
        )?;
        let (xs, ys) = self.paired(|| library(false, &build), || script_run(&script_path))?;
        self.push(
            "seed_script_warm",
            "s",
            xs,
            "the seed's shell script, warm",
            ys,
            "faster than the script",
            |v, b| v < b,
        )?;
        Ok(())
    }

    fn parallel_pipeline(&mut self) -> Result<()> {
        let (mut walls, mut sums) = (Vec::new(), Vec::new());
        for _ in 0..self.runs.min(3) {
            let mut pipeline = webapp_pipeline(&self.runner, &self.root, false)?;
            pipeline.force(true);
            let report = pipeline.run(
                &self
                    .runner
                    .clone()
                    .echo(Echo::Silent)
                    .session(buildkit_lib::Session::new("webapp")),
            )?;
            if !report.ok {
                bail!("the webapp pipeline failed:\n{report}");
            }
            walls.push(report.seconds);
            sums.push(report.steps.iter().map(|s| s.seconds).sum());
        }
        self.push(
            "parallel_pipeline",
            "s",
            walls,
            "sum of the steps' own times",
            sums,
            "wall < sum",
            |v, b| v < b,
        )
    }

    fn log_stream(&mut self) -> Result<()> {
        let xtask = std::env::current_exe().context("cannot find the xtask binary")?;
        let dir = self.root.join("target/buildkit/bench");
        std::fs::create_dir_all(&dir)?;
        let out = dir.join("stream.log");
        let shell_cmd = format!("{} > '{}'", STREAM_COMMAND, out.display());
        let mut peaks = Vec::new();
        let (xs, ys) = self.paired(
            || {
                let child = Command::new(&xtask)
                    .args(["bench-stream", &out.display().to_string()])
                    .stdin(Stdio::null())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::null())
                    .spawn()?;
                peaks.push(wait_max_rss(child)? as f64 / (1024.0 * 1024.0));
                Ok(())
            },
            || raw(Command::new("sh").args(["-c", &shell_cmd])),
        )?;
        let _ = std::fs::remove_file(&out);
        let peak_samples = peaks.clone();
        self.push(
            "log_stream_time",
            "s",
            xs,
            "the shell redirecting the same output to a file",
            ys,
            "ratio <= 1.5",
            |v, b| v <= b * 1.5,
        )?;
        let max_peak = peak_samples.iter().cloned().fold(0.0, f64::max);
        self.push(
            "log_stream_peak_memory",
            "MiB",
            peak_samples,
            "(none: an absolute limit)",
            vec![0.0],
            "< 32 MiB",
            move |_, _| max_peak < 32.0,
        )?;
        Ok(())
    }

    fn context_audit(&mut self) -> Result<()> {
        let dir = tempfile_dir(&self.root, "context-tree")?;
        generate_tree(&dir, 100_000)?;
        std::fs::write(
            dir.join(".dockerignore"),
            "# generated for the benchmark\n**/*.pyc\nbuild/\n!build/keep\nd1*/skip-*\n**/__pycache__\n*.log\n",
        )?;
        let (xs, ys) = self.paired(
            || {
                let audit = buildkit_lib::validate::audit(&dir, None)?;
                if audit.file_paths().len() < 10_000 {
                    bail!("the audit found only {} files", audit.file_paths().len());
                }
                Ok(())
            },
            || {
                let n: usize = walk(&dir).iter().sum();
                if n < 100_000 {
                    bail!("the plain walk found only {n} files");
                }
                Ok(())
            },
        )?;
        let _ = std::fs::remove_dir_all(&dir);
        self.push(
            "context_audit",
            "s",
            xs,
            "walking the same 100,000-file tree with no rules",
            ys,
            "< 1 s",
            |v, _| v < 1.0,
        )
    }

    fn xtask_compile(&mut self) -> Result<()> {
        let scratch = tempfile_dir(&self.root, "compile")?;
        for item in [
            "Cargo.toml",
            "Cargo.lock",
            "buildkit-lib",
            "xtask",
            "tests",
            ".cargo",
        ] {
            let from = self.root.join(item);
            if from.exists() {
                raw(Command::new("cp").arg("-r").arg(&from).arg(&scratch))?;
            }
        }
        let target = scratch.join("target");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let build = |scratch: &Path| {
            raw(Command::new(&cargo)
                .args(["build", "--offline", "-p", "xtask"])
                .current_dir(scratch)
                .env("CARGO_TARGET_DIR", &target))
        };
        let (mut cold, mut warm) = (Vec::new(), Vec::new());
        let runs = if self.runs <= 3 { 1 } else { 3 };
        for _ in 0..runs {
            let _ = std::fs::remove_dir_all(&target);
            cold.push(time(|| build(&scratch))?);
            for _ in 0..2 {
                let main = scratch.join("xtask/src/main.rs");
                let text = std::fs::read_to_string(&main)?;
                std::fs::write(&main, text)?;
                warm.push(time(|| build(&scratch))?);
            }
        }
        let _ = std::fs::remove_dir_all(&scratch);
        self.push(
            "xtask_compile_cold",
            "s",
            cold,
            "(none: an absolute target)",
            vec![0.0],
            "< 30 s on 2 cores",
            |v, _| v < 30.0,
        )?;
        self.push(
            "xtask_compile_touch",
            "s",
            warm,
            "(none: an absolute target)",
            vec![0.0],
            "< 2 s",
            |v, _| v < 2.0,
        )?;
        Ok(())
    }
}

/// The command whose 1 GiB of output the log-stream figure sends through the runner.
pub const STREAM_COMMAND: &str =
    "yes 'a line of build output, about as long as the ones buildkit prints' | head -c 1073741824";

/// `xtask bench-stream FILE`: the measured side of `log_stream`, in its own process so its
/// peak memory can be read: 1 GiB through the runner, quiet, into FILE.
pub fn stream(args: &[String]) -> Result<u8> {
    let [log] = args else {
        bail!("usage: xtask bench-stream LOG");
    };
    let _ = std::fs::remove_file(log);
    let runner = Runner::new().echo(Echo::Silent).log_to(log);
    runner.run(&Cmd::new("sh").args(["-c", STREAM_COMMAND]))?;
    // This process's own peak, since its exec: `ru_maxrss` as its parent sees it also
    // counts the parent's memory copied at fork, which made the figure depend on what
    // the benchmark had measured before.
    let status = std::fs::read_to_string("/proc/self/status")?;
    let kib = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .context("no VmHWM in /proc/self/status")?;
    println!("{kib}");
    Ok(0)
}

/// The peak memory (bytes) the streaming process reports for itself on stdout.
fn wait_max_rss(child: std::process::Child) -> Result<u64> {
    let out = child
        .wait_with_output()
        .context("cannot wait for the streaming process")?;
    if !out.status.success() {
        bail!("the streaming process failed ({})", out.status);
    }
    let kib: u64 = String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .context("the streaming process did not report its peak memory")?;
    Ok(kib * 1024)
}

fn tempfile_dir(root: &Path, name: &str) -> Result<PathBuf> {
    let dir = root.join("target/buildkit/bench").join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// A tree of `n` small files in nested directories, with some matching the rules.
fn generate_tree(dir: &Path, n: usize) -> Result<()> {
    let names = ["app.py", "mod.pyc", "notes.log", "skip-me.txt", "data.json"];
    let per_dir = 50;
    for i in 0..n.div_ceil(per_dir) {
        let sub = match i % 4 {
            0 => dir.join(format!("d{}/pkg{}", i / 100, i % 100)),
            1 => dir.join(format!("d{}/pkg{}/__pycache__", i / 100, i % 100)),
            2 => dir.join(format!("build/b{i}")),
            _ => dir.join(format!("src/s{}/deep/er", i)),
        };
        std::fs::create_dir_all(&sub)?;
        for j in 0..per_dir.min(n - i * per_dir) {
            std::fs::write(sub.join(format!("{j}-{}", names[j % names.len()])), b"x")?;
        }
    }
    std::fs::write(dir.join("build/keep"), b"kept")?;
    Ok(())
}

/// Regular files per directory under `dir`, by a plain walk with no rules: the baseline.
fn walk(dir: &Path) -> Vec<usize> {
    let mut counts = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        let mut n = 0;
        for entry in entries.flatten() {
            match entry.file_type() {
                Ok(t) if t.is_dir() => stack.push(entry.path()),
                Ok(t) if t.is_file() => n += 1,
                _ => {}
            }
        }
        counts.push(n);
    }
    counts
}
