//! `scripts/ensure-deps --check` finds exactly the libclang that `clang-sys` links,
//! tested against fake library trees (CI's machine already has clang, so the real
//! system cannot show a miss).

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/ensure-deps")
}

/// A 64-bit ELF header, enough for the class check.
const ELF64: &[u8] = b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0";
const ELF32: &[u8] = b"\x7fELF\x01\x01\x01\0\0\0\0\0\0\0\0\0";

fn lib(root: &Path, rel: &str, bytes: &[u8]) -> PathBuf {
    let p = root.join(rel);
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(&p, bytes).unwrap();
    p
}

/// Runs the detection with the fixed search globs under `root`, no llvm-config and no
/// library path variables unless given. Returns what it found.
fn check(root: &Path, env: &[(&str, &str)]) -> Option<String> {
    let no_llvm = root.join("no-llvm-config");
    let mut cmd = Command::new("bash");
    cmd.arg(script())
        .arg("--check")
        .env("ENSURE_DEPS_ROOT", root)
        .env("LLVM_CONFIG_PATH", &no_llvm)
        .env_remove("LIBCLANG_PATH")
        .env_remove("LD_LIBRARY_PATH")
        .env_remove("LIBRARY_PATH");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run ensure-deps");
    let found = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert_eq!(out.status.success(), !found.is_empty(), "{out:?}");
    out.status.success().then_some(found)
}

#[test]
fn only_libclang_cpp_is_not_enough() {
    // The fresh Debian image of the bug report: libclang-cpp14 without libclang.
    let t = tempfile::tempdir().unwrap();
    lib(
        t.path(),
        "usr/lib/x86_64-linux-gnu/libclang-cpp.so.14",
        ELF64,
    );
    lib(t.path(), "usr/lib/llvm-14/lib/libclang-cpp.so.14", ELF64);
    lib(t.path(), "usr/lib/llvm-14/lib/libclang-cpp.so", ELF64);
    // A bare soname is only loadable at runtime, which our bindgen build does not use.
    lib(t.path(), "usr/lib/llvm-14/lib/libclang.so.1", ELF64);
    assert_eq!(check(t.path(), &[]), None);
}

#[test]
fn libclang_dev_layouts_are_found() {
    let t = tempfile::tempdir().unwrap();
    let p = lib(t.path(), "usr/lib/llvm-14/lib/libclang.so", ELF64);
    assert_eq!(check(t.path(), &[]), Some(p.display().to_string()));

    let t = tempfile::tempdir().unwrap();
    let p = lib(t.path(), "usr/lib/x86_64-linux-gnu/libclang-14.so", ELF64);
    assert_eq!(check(t.path(), &[]), Some(p.display().to_string()));

    let t = tempfile::tempdir().unwrap();
    let p = lib(t.path(), "usr/local/llvm17/lib/libclang.so", ELF64);
    assert_eq!(check(t.path(), &[]), Some(p.display().to_string()));
}

#[test]
fn wrong_class_and_non_elf_are_skipped() {
    let t = tempfile::tempdir().unwrap();
    lib(t.path(), "usr/lib/llvm-14/lib/libclang.so", ELF32);
    lib(t.path(), "usr/lib/libclang.so", b"INPUT(-lclang)\n");
    assert_eq!(check(t.path(), &[]), None);
}

#[test]
fn libclang_path_is_the_only_place_searched_when_set() {
    let t = tempfile::tempdir().unwrap();
    lib(t.path(), "usr/lib/llvm-14/lib/libclang.so", ELF64);
    let custom = t.path().join("custom");
    fs::create_dir_all(&custom).unwrap();
    let dir = custom.display().to_string();
    // Set to an empty directory: clang-sys looks nowhere else, so neither do we.
    assert_eq!(check(t.path(), &[("LIBCLANG_PATH", &dir)]), None);
    let p = lib(&custom, "libclang-15.so", ELF64);
    assert_eq!(
        check(t.path(), &[("LIBCLANG_PATH", &dir)]),
        Some(p.display().to_string())
    );
    // Or the file itself.
    let file = p.display().to_string();
    assert_eq!(check(t.path(), &[("LIBCLANG_PATH", &file)]), Some(file));
}

#[test]
fn llvm_config_and_library_paths_are_searched() {
    let t = tempfile::tempdir().unwrap();
    let prefix = t.path().join("opt/llvm");
    let p = lib(&prefix, "lib/libclang.so", ELF64);
    let fake = t.path().join("llvm-config");
    fs::write(&fake, format!("#!/bin/sh\necho {}\n", prefix.display())).unwrap();
    fs::set_permissions(&fake, fs::Permissions::from_mode(0o755)).unwrap();
    let fake = fake.display().to_string();
    assert_eq!(
        check(t.path(), &[("LLVM_CONFIG_PATH", &fake)]),
        Some(p.display().to_string())
    );

    let t = tempfile::tempdir().unwrap();
    let p = lib(t.path(), "somewhere/libclang.so", ELF64);
    let dirs = format!("/nonexistent:{}", t.path().join("somewhere").display());
    assert_eq!(
        check(t.path(), &[("LIBRARY_PATH", &dirs)]),
        Some(p.display().to_string())
    );
}

/// `scripts/ensure-browser` with a fake `apt-get` first on PATH, and Chromium's names
/// pointed at files that do not exist yet (the machine's own Chromium must not count).
fn ensure_browser(bin: &Path, apt: &str, args: &[&str]) -> (bool, String) {
    fs::create_dir_all(bin).unwrap();
    let fake = bin.join("apt-get");
    fs::write(
        &fake,
        format!(
            "#!/bin/sh\necho \"$@\" >> \"{}/apt.log\"\n{apt}\n",
            bin.display()
        ),
    )
    .unwrap();
    fs::set_permissions(&fake, fs::Permissions::from_mode(0o755)).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/ensure-browser");
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
    let out = Command::new("bash")
        .arg(script)
        .args(args)
        .env("PATH", path)
        .env("TENET_CHROMIUM", "tenet-test-chromium")
        .env("TENET_CHROMEDRIVER", "tenet-test-chromedriver")
        .output()
        .unwrap();
    let log = fs::read_to_string(bin.join("apt.log")).unwrap_or_default();
    (out.status.success(), log)
}

#[test]
fn ensure_browser_installs_chromium_when_missing() {
    let t = tempfile::tempdir().unwrap();
    let bin = t.path().join("bin");
    // --check only looks.
    let (ok, log) = ensure_browser(&bin, "exit 0", &["--check"]);
    assert!(!ok && log.is_empty(), "{log}");
    if !Command::new("id")
        .arg("-u")
        .output()
        .unwrap()
        .stdout
        .starts_with(b"0")
    {
        eprintln!("not root: the install path needs sudo; checked --check only");
        return;
    }
    // apt fails: so does the script.
    let (ok, _) = ensure_browser(&bin, "exit 100", &[]);
    assert!(!ok);
    // apt installs them: the script succeeds, having asked for both packages.
    let make = format!(
        "case \"$*\" in *install*) for f in tenet-test-chromium tenet-test-chromedriver; do \
         printf '#!/bin/sh\\n' > \"{0}/$f\"; chmod +x \"{0}/$f\"; done;; esac",
        bin.display()
    );
    let _ = fs::remove_file(bin.join("apt.log"));
    let (ok, log) = ensure_browser(&bin, &make, &[]);
    assert!(ok, "{log}");
    assert!(
        log.contains("install -y -qq --no-install-recommends chromium chromium-driver"),
        "{log}"
    );
    // Now present: nothing more is installed.
    let _ = fs::remove_file(bin.join("apt.log"));
    let (ok, log) = ensure_browser(&bin, "exit 1", &[]);
    assert!(ok && log.is_empty(), "{log}");
}
