//! PyInstaller packaging through three image stages (base, runtime, package) into `dist/`.
