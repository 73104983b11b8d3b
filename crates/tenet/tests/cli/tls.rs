//! TLS: `tenet serve --tls-cert --tls-key` with a certificate made here (rcgen), the
//! CLI refusing a server it cannot verify and trusting one with `--ca-cert`, and the
//! refusal to listen on a non-loopback address in clear.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

use crate::common::{bin, json_out, stderr, terminate};

/// A CA and a certificate it signed for localhost and 127.0.0.1: (ca, cert, key) files.
fn certificates(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "tenet test CA");
    ca.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::CrlSign,
    ];
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca, ca_key);
    let key = KeyPair::generate().unwrap();
    let mut leaf = CertificateParams::new(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    leaf.distinguished_name
        .push(DnType::CommonName, "localhost");
    leaf.use_authority_key_identifier_extension = true;
    leaf.extended_key_usages
        .push(ExtendedKeyUsagePurpose::ServerAuth);
    let cert = leaf.signed_by(&key, &issuer).unwrap();
    let files = (
        dir.join("ca.pem"),
        dir.join("cert.pem"),
        dir.join("key.pem"),
    );
    std::fs::write(&files.0, ca_cert.pem()).unwrap();
    std::fs::write(&files.1, cert.pem()).unwrap();
    std::fs::write(&files.2, key.serialize_pem()).unwrap();
    files
}

fn serve(dir: &Path, args: &[&str]) -> Child {
    Command::new(bin())
        .args(["serve", "--data-dir"])
        .arg(dir)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Waits for the server's discovery file; returns its URL.
fn wait_url(dir: &Path, child: &mut Child) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(f) = tenet_server::server::read_server_file(dir) {
            return f.url;
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!("the server exited: {status}");
        }
        assert!(Instant::now() < deadline, "no server file");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn cli(dir: &Path, args: &[&str]) -> std::process::Output {
    Command::new(bin())
        .arg("--data-dir")
        .arg(dir)
        .args(args)
        .env_remove("TENET_SERVER")
        .env_remove("TENET_CA_CERT")
        .output()
        .unwrap()
}

#[test]
fn the_cli_verifies_the_servers_certificate() {
    let work = tempfile::tempdir().unwrap();
    let (ca, cert, key) = certificates(work.path());
    let d = work.path().join("data");
    let mut child = serve(
        &d,
        &[
            "--listen",
            "127.0.0.1:0",
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ],
    );
    let url = wait_url(&d, &mut child);
    assert!(url.starts_with("https://127.0.0.1:"), "{url}");
    let ca = ca.to_str().unwrap();

    // Not trusted: a clear error, nothing done.
    let o = cli(&d, &["--server", &url, "tenant", "create", "acme"]);
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(
        err.contains("certificate") && err.contains("--ca-cert"),
        "{err}"
    );
    // Found through the data directory, not trusted: which server, and the way out.
    let o = cli(&d, &["tenant", "list"]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains(&url) && stderr(&o).contains("--ca-cert"),
        "{}",
        stderr(&o)
    );
    // Trusted through --ca-cert: found by --server or through the data directory.
    let o = cli(
        &d,
        &[
            "--server",
            &url,
            "--ca-cert",
            ca,
            "tenant",
            "create",
            "acme",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let list = json_out(&cli(&d, &["--ca-cert", ca, "--json", "tenant", "list"]));
    assert_eq!(list[0]["name"], "acme", "{list}");
    // Plain HTTP to the TLS port gets nothing.
    let plain = url.replace("https://", "http://");
    let o = cli(&d, &["--server", &plain, "tenant", "list"]);
    assert!(!o.status.success());
    // A CA file that is not a certificate is refused as such.
    let o = cli(
        &d,
        &[
            "--server",
            &url,
            "--ca-cert",
            cert.with_extension("missing").to_str().unwrap(),
            "tenant",
            "list",
        ],
    );
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("cannot read the CA certificate"),
        "{}",
        stderr(&o)
    );
    terminate(&child);
    assert!(child.wait().unwrap().success());
}

#[test]
fn a_non_loopback_address_needs_tls_or_insecure_listen() {
    let work = tempfile::tempdir().unwrap();
    let (_, cert, key) = certificates(work.path());
    let d = work.path().join("data");
    // Refused, before anything is opened.
    let o = Command::new(bin())
        .args(["serve", "--listen", "0.0.0.0:0", "--data-dir"])
        .arg(&d)
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("refusing to listen on 0.0.0.0:"),
        "{}",
        stderr(&o)
    );
    assert!(tenet_server::server::read_server_file(&d).is_none());
    // With TLS it serves.
    let mut child = serve(
        &d,
        &[
            "--listen",
            "0.0.0.0:0",
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ],
    );
    assert!(wait_url(&d, &mut child).starts_with("https://0.0.0.0:"));
    terminate(&child);
    assert!(child.wait().unwrap().success());
    // In clear only when told, with a warning.
    let mut child = serve(&d, &["--listen", "0.0.0.0:0", "--insecure-listen"]);
    wait_url(&d, &mut child);
    terminate(&child);
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("WITHOUT TLS"), "{err}");
}
