//! The server's listener (TCP, or TLS with rustls). Its connections turn the answers
//! hyper writes on its own into the API's JSON errors.
//!
//! hyper refuses a request it cannot parse before any handler sees it: `400` (not
//! HTTP), `414` (URI longer than 65534 bytes) and `431` (more than 100 header fields,
//! or a request head over about 400 KiB). It writes those answers itself, with an
//! empty body and no hook to change them. [`JsonErrorsIo`] recognises exactly such an
//! answer in what hyper writes (a status line of one of these codes, `content-length:
//! 0`, no content type; the API's own answers always carry a JSON body) and sends it
//! with the [`ApiError`] of that status instead, so every error a client sees is
//! `{code, message}`.

use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

use crate::error::ApiError;

/// A connection: a TCP stream, or TLS over one.
pub trait Conn: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Conn for T {}

/// How long a TLS handshake may take before the connection is dropped.
const HANDSHAKE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// The server's listener: plain TCP or TLS (rustls), its connections [`JsonErrorsIo`].
#[derive(Debug)]
pub struct ApiListener {
    kind: Kind,
    addr: SocketAddr,
}

enum Kind {
    Plain(TcpListener),
    /// Handshakes run in tasks of their own (a slow client must not hold up the
    /// others); finished ones arrive here.
    Tls(mpsc::Receiver<(Box<dyn Conn>, SocketAddr)>),
}

impl std::fmt::Debug for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Kind::Plain(_) => "Plain",
            Kind::Tls(_) => "Tls",
        })
    }
}

impl ApiListener {
    pub fn plain(listener: TcpListener) -> io::Result<Self> {
        Ok(ApiListener {
            addr: listener.local_addr()?,
            kind: Kind::Plain(listener),
        })
    }

    /// TLS with `config`; must be called inside a tokio runtime.
    pub fn tls(listener: TcpListener, config: Arc<rustls::ServerConfig>) -> io::Result<Self> {
        let addr = listener.local_addr()?;
        let (tx, rx) = mpsc::channel(64);
        let acceptor = tokio_rustls::TlsAcceptor::from(config);
        tokio::spawn(async move {
            let mut listener = listener;
            loop {
                let (tcp, peer) = axum::serve::Listener::accept(&mut listener).await;
                if tx.is_closed() {
                    break;
                }
                let (acceptor, tx) = (acceptor.clone(), tx.clone());
                tokio::spawn(async move {
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                        Ok(Ok(tls)) => {
                            let _ = tx.send((Box::new(tls) as Box<dyn Conn>, peer)).await;
                        }
                        Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                    }
                });
            }
        });
        Ok(ApiListener {
            addr,
            kind: Kind::Tls(rx),
        })
    }
}

impl axum::serve::Listener for ApiListener {
    type Io = JsonErrorsIo<Box<dyn Conn>>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        let (io, addr) = match &mut self.kind {
            Kind::Plain(l) => {
                let (io, addr) = axum::serve::Listener::accept(l).await;
                (Box::new(io) as Box<dyn Conn>, addr)
            }
            Kind::Tls(rx) => match rx.recv().await {
                Some(c) => c,
                // The acceptor task ended: nothing more will come.
                None => std::future::pending().await,
            },
        };
        (JsonErrorsIo::new(io), addr)
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        Ok(self.addr)
    }
}

/// The TLS configuration of a certificate chain and its private key (PEM files).
pub fn tls_config(cert: &Path, key: &Path) -> Result<rustls::ServerConfig, String> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs = CertificateDer::pem_file_iter(cert)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("cannot read the certificate {}: {e}", cert.display()))?;
    if certs.is_empty() {
        return Err(format!(
            "{} holds no certificate (expected PEM, -----BEGIN CERTIFICATE-----)",
            cert.display()
        ));
    }
    let key = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| format!("cannot read the private key {}: {e}", key.display()))?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| format!("the certificate and key do not make a TLS identity: {e}"))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// A connection that rewrites hyper's bodiless parse-error answers (see the module
/// documentation).
#[derive(Debug)]
pub struct JsonErrorsIo<T> {
    inner: T,
    /// A rewritten answer being written: bytes, how many are written, and the length
    /// of the original write to report once all are.
    pending: Option<(Vec<u8>, usize, usize)>,
}

impl<T> JsonErrorsIo<T> {
    pub fn new(inner: T) -> Self {
        JsonErrorsIo {
            inner,
            pending: None,
        }
    }
}

/// The JSON answer replacing `head` if it is one of hyper's own error answers.
fn rewrite(head: &[u8]) -> Option<Vec<u8>> {
    let head = std::str::from_utf8(head).ok()?;
    let head = head.strip_suffix("\r\n\r\n")?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next()?;
    let rest = status_line.strip_prefix("HTTP/1.")?.get(2..)?;
    let status: u16 = rest.get(..3)?.parse().ok()?;
    let error = ApiError::transport(status)?;
    let mut zero_length = false;
    let mut out = format!("{status_line}\r\n");
    for line in lines {
        let lower = line.to_ascii_lowercase();
        if lower.starts_with("content-type:") {
            return None;
        }
        if lower.starts_with("connection:") {
            continue;
        }
        if let Some(len) = lower.strip_prefix("content-length:") {
            zero_length = len.trim() == "0";
            continue;
        }
        out.push_str(line);
        out.push_str("\r\n");
    }
    if !zero_length {
        return None;
    }
    let body = serde_json::to_vec(&error.body()).expect("serializes");
    out.push_str("content-type: application/json\r\n");
    out.push_str(&format!("content-length: {}\r\n", body.len()));
    out.push_str("connection: close\r\n\r\n");
    let mut out = out.into_bytes();
    out.extend_from_slice(&body);
    Some(out)
}

impl<T: AsyncRead + Unpin> AsyncRead for JsonErrorsIo<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for JsonErrorsIo<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        if this.pending.is_none() {
            // hyper's answer head arrives in one write (it buffers the head whole).
            match rewrite(buf) {
                Some(out) => this.pending = Some((out, 0, buf.len())),
                None => return Pin::new(&mut this.inner).poll_write(cx, buf),
            }
        }
        let (out, written, reported) = this.pending.as_mut().expect("set above");
        while *written < out.len() {
            match ready!(Pin::new(&mut this.inner).poll_write(cx, &out[*written..])) {
                Ok(0) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Ok(n) => *written += n,
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
        let n = *reported;
        this.pending = None;
        Poll::Ready(Ok(n))
    }

    // Not vectored: hyper then hands every write over as one flat buffer, so an answer
    // head is always seen whole by `poll_write`.
    fn is_write_vectored(&self) -> bool {
        false
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::rewrite;

    #[test]
    fn rewrites_only_bodiless_parse_errors() {
        let hyper431 = b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\ndate: Mon, 01 Jan 2024 00:00:00 GMT\r\n\r\n";
        let out = String::from_utf8(rewrite(hyper431).unwrap()).unwrap();
        assert!(out.starts_with("HTTP/1.1 431 "), "{out}");
        assert!(out.contains("content-type: application/json\r\n"), "{out}");
        assert!(out.contains("date: Mon"), "{out}");
        let body = out.split("\r\n\r\n").nth(1).unwrap();
        let v: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(v["code"], "HEADERS_TOO_LARGE");
        assert!(out.contains(&format!("content-length: {}\r\n", body.len())));
        // The API's own answers (a JSON body, a content type) pass untouched.
        assert!(rewrite(
            b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-type: application/json\r\ncontent-length: 0\r\n\r\n"
        )
        .is_none());
        assert!(rewrite(b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n").is_none());
        assert!(rewrite(b"HTTP/1.1 414 URI Too Long\r\ncontent-length: 5\r\n\r\n").is_none());
        assert!(rewrite(b"{\"rows\": []}").is_none());
    }
}
