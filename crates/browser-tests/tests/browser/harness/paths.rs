//! Where the harness finds things: the `palisade` binary, the target directory (screenshots,
//! axe-core), all relative to this test executable (`target/<profile>/deps/browser-…`), so a
//! custom `CARGO_TARGET_DIR` or `--release` works without configuration.

use std::path::PathBuf;

/// `target/` (the directory holding `<profile>/deps/<this test>`).
pub fn target_dir() -> PathBuf {
    profile_dir()
        .parent()
        .map(PathBuf::from)
        .expect("the test executable lives in target/<profile>/deps")
}

/// `target/<profile>/`.
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test executable's path");
    exe.parent()
        .and_then(|deps| deps.parent())
        .map(PathBuf::from)
        .expect("the test executable lives in target/<profile>/deps")
}

/// The server binary: `PALISADE_BIN`, else `target/<profile>/palisade` next to this test's
/// profile (built by `cargo build -p palisade`; this target does not build it).
pub fn palisade_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("PALISADE_BIN").filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    let bin = profile_dir().join("palisade");
    assert!(
        bin.is_file(),
        "{} is missing: run `cargo build -p palisade` first (same profile as the tests), \
         or set PALISADE_BIN",
        bin.display()
    );
    bin
}

/// The browser: `CHROMIUM`, else Debian's `/usr/bin/chromium`.
pub fn chromium() -> PathBuf {
    let p = std::env::var_os("CHROMIUM")
        .filter(|p| !p.is_empty())
        .map_or_else(|| PathBuf::from("/usr/bin/chromium"), PathBuf::from);
    assert!(
        p.is_file(),
        "{} is missing: `apt-get install -y chromium chromium-driver` (or set CHROMIUM)",
        p.display()
    );
    p
}

/// `target/browser-screenshots/`.
pub fn screenshot_dir() -> PathBuf {
    target_dir().join("browser-screenshots")
}

/// axe-core's `axe.min.js`, fetched by `scripts/fetch-axe.sh` into `target/axe/`.
pub fn axe_js() -> PathBuf {
    target_dir().join("axe").join("axe.min.js")
}
