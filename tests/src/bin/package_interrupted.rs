//! A mounted package step long enough to be interrupted, for the Ctrl-C packaging test in
//! `tests/tests/package.rs`. It writes its pid to `PROJECT/child.pid`, then packages
//! `PROJECT` with the runtime image `RUNTIME` as run `RUN_ID` of project `deskapp`; the
//! test sends SIGINT while PyInstaller runs and expects exit 130 (this program's, once the
//! run is cancelled and cleaned up, as a downstream xtask does).
//!
//! Usage: `package_interrupted PROJECT RUN_ID RUNTIME`

use std::path::PathBuf;

use buildkit_lib::docker::Build;
use buildkit_lib::package::{Mode, Package, PyInstaller, Stages};
use buildkit_lib::plan::Step;
use buildkit_lib::Session;

fn main() {
    // Ctrl-C handling is the program's choice: this one cancels its run on signals.
    let (cancel, _signals) = e2e::cancel_on_signals();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [project, run_id, runtime] = args.as_slice() else {
        eprintln!("usage: package_interrupted PROJECT RUN_ID RUNTIME");
        std::process::exit(2);
    };
    let project = PathBuf::from(project);
    std::fs::write(project.join("child.pid"), std::process::id().to_string())
        .expect("write the pid file");
    let mut session = Session::new("deskapp");
    session.run_id = run_id.clone();
    // `RUNTIME` is the runtime stage's tag, `<image>:runtime` as `Stages::new` tags it.
    let image = runtime
        .strip_suffix(":runtime")
        .expect("RUNTIME is <image>:runtime");
    let stages = Stages::new(Build::new(&project), image);
    let runner = e2e::engine().session(session).cancel_with(cancel.clone());
    let result =
        Package::new(stages, PyInstaller::spec("deskapp.spec"), Mode::Mounted).run(&runner);
    if cancel.is_cancelled() {
        runner.clean_up_cancelled();
        std::process::exit(buildkit_lib::cmd::EXIT_INTERRUPTED);
    }
    eprintln!("the package step was not interrupted; it ended with {result:?}");
    std::process::exit(1);
}
