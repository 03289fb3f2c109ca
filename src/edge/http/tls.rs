//! TLS for a listener: rustls with the ring provider, TLS 1.2 and 1.3,
//! HTTP/1.1 by ALPN. Two sources:
//! * one certificate and key (the admin API's `--admin-tls-cert` and
//!   `--admin-tls-key`);
//! * a directory of them in certbot's `live/` layout (the scan listener's
//!   `--tls-cert-dir`): every `DIR/*/fullchain.pem` with its `privkey.pem`,
//!   chosen per connection by SNI among the DNS names each certificate
//!   holds, wildcards (`*.example.com`, one label) included. A name no
//!   certificate holds (or no SNI at all) fails the handshake, counted in
//!   `qrlaunch_tls_unknown_host_total`.
//!
//! The directory's certificates are joined by those in the store (obtained
//! with ACME, [`crate::edge::acme`]), given with [`TlsFiles::set_stored`]
//! whenever the change log says one was stored; a name both hold goes to
//! the certificate that expires last.
//!
//! Files are read at start and again on `SIGHUP` ([`TlsFiles::reload`]) and,
//! for a directory, when a file in it changes ([`TlsFiles::changed`], polled
//! every [`POLL`]); a reload that fails keeps what is in use, and
//! connections already open keep theirs.

use arc_swap::ArcSwap;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

/// What a listener's files look like: path, modification time, length.
type Fingerprint = Vec<(PathBuf, Option<SystemTime>, u64)>;

/// How often a certificate directory is looked at for changed files.
pub const POLL: Duration = Duration::from_secs(2);

/// Called when a connection asks for a host no certificate holds.
pub type OnUnknownHost = Arc<dyn Fn() + Send + Sync>;

/// Why a certificate or key could not be used; names the flag and file,
/// never the key's content.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("--admin-tls-cert {}: {reason}", .path.display())]
    Cert { path: PathBuf, reason: String },
    #[error("--admin-tls-key {}: {reason}", .path.display())]
    Key { path: PathBuf, reason: String },
    #[error("--admin-tls-cert and --admin-tls-key do not make a pair: {0}")]
    Pair(String),
    #[error("--tls-cert-dir {}: {reason}", .path.display())]
    Dir { path: PathBuf, reason: String },
}

/// Where a listener's certificates come from.
enum Source {
    Pair {
        cert: PathBuf,
        key: PathBuf,
    },
    /// Chosen by SNI among a directory's (if any) and the store's.
    Dir {
        dir: Option<PathBuf>,
        on_unknown: OnUnknownHost,
    },
}

/// Certificates from files, replaceable while serving.
pub struct TlsFiles {
    source: Source,
    config: ArcSwap<rustls::ServerConfig>,
    /// The files as last read well, to see changes.
    seen: Mutex<Fingerprint>,
    /// The files as they were when a reload last failed, and when.
    failed: Mutex<Option<(Fingerprint, std::time::Instant)>>,
    /// When the first of the served certificates expires (UNIX seconds).
    expires: std::sync::atomic::AtomicI64,
    /// The certificates the served configuration was built from; held
    /// while a new one is built and swapped in, so that two rebuilds (a
    /// file change, a stored certificate) never undo each other.
    certs: Mutex<Certs>,
}

/// What an SNI listener serves: the directory's certificates as last read
/// well, and the store's as last given.
#[derive(Default)]
struct Certs {
    dir: Vec<DirCert>,
    stored: Vec<DirCert>,
}

impl std::fmt::Debug for TlsFiles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut d = f.debug_struct("TlsFiles");
        match &self.source {
            Source::Pair { cert, key } => d.field("cert", cert).field("key", key),
            Source::Dir { dir, .. } => d.field("dir", dir),
        };
        d.finish_non_exhaustive()
    }
}

impl TlsFiles {
    pub fn load(cert: &Path, key: &Path) -> Result<TlsFiles, TlsError> {
        TlsFiles::from_source(Source::Pair {
            cert: cert.into(),
            key: key.into(),
        })
    }

    /// Every certificate of a certbot-style directory (none without one,
    /// until the store's are given), chosen by SNI; `on_unknown` is called
    /// for each connection asking for a host none holds.
    pub fn load_dir(dir: Option<&Path>, on_unknown: OnUnknownHost) -> Result<TlsFiles, TlsError> {
        TlsFiles::from_source(Source::Dir {
            dir: dir.map(Path::to_path_buf),
            on_unknown,
        })
    }

    fn from_source(source: Source) -> Result<TlsFiles, TlsError> {
        let seen = fingerprint(&source);
        let certs = Certs {
            dir: read_source_dir(&source)?,
            stored: Vec::new(),
        };
        let (config, expires) = build(&source, &certs)?;
        Ok(TlsFiles {
            source,
            config: ArcSwap::from_pointee(config),
            seen: Mutex::new(seen),
            failed: Mutex::new(None),
            expires: std::sync::atomic::AtomicI64::new(expires),
            certs: Mutex::new(certs),
        })
    }

    /// Serves the store's certificates beside the directory's (as last read
    /// well; the directory is not read again) from the next connection on.
    /// One that cannot be used is left out, and named with its reason in
    /// what is returned (never its key).
    pub fn set_stored(&self, certs: &[crate::replication::store::StoredCertificate]) -> Vec<String> {
        let mut problems = Vec::new();
        let mut usable = Vec::new();
        for cert in certs {
            let chain = CertificateDer::pem_slice_iter(cert.chain_pem.as_bytes()).collect::<Result<Vec<_>, _>>();
            let key = PrivateKeyDer::from_pem_slice(cert.key_pem.as_bytes());
            let parsed = match (chain, key) {
                (Ok(chain), Ok(key)) => certified(chain, key),
                (Err(e), _) => Err(format!("not a PEM certificate chain: {e}")),
                (_, Err(e)) => Err(format!("no PEM private key read ({e})")),
            };
            match parsed {
                Ok(dir_cert) => usable.push(dir_cert),
                Err(reason) => problems.push(format!("the stored certificate for {}: {reason}", cert.name)),
            }
        }
        let Ok(mut certs) = self.certs.lock() else {
            return problems;
        };
        certs.stored = usable;
        match build(&self.source, &certs) {
            Ok((config, expires)) => self.swap(config, expires),
            Err(e) => problems.push(e.to_string()),
        }
        problems
    }

    fn swap(&self, config: rustls::ServerConfig, expires: i64) {
        self.config.store(Arc::new(config));
        self.expires.store(expires, std::sync::atomic::Ordering::Relaxed);
    }

    /// When the first of the certificates served now expires, UNIX seconds
    /// (`i64::MAX` when none says).
    pub fn expires(&self) -> i64 {
        self.expires.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Reads the files again; new connections get the new certificates,
    /// and on an error the old ones stay.
    pub fn reload(&self) -> Result<(), TlsError> {
        let Ok(mut certs) = self.certs.lock() else {
            return Ok(());
        };
        let seen = fingerprint(&self.source);
        let read = read_source_dir(&self.source).and_then(|dir| {
            let next = Certs {
                dir,
                stored: certs.stored.clone(),
            };
            build(&self.source, &next).map(|built| (next, built))
        });
        let (config, expires) = match read {
            Ok((next, built)) => {
                *certs = next;
                built
            }
            Err(error) => {
                if let Ok(mut failed) = self.failed.lock() {
                    *failed = Some((seen, std::time::Instant::now()));
                }
                return Err(error);
            }
        };
        self.swap(config, expires);
        if let Ok(mut last) = self.seen.lock() {
            *last = seen;
        }
        if let Ok(mut failed) = self.failed.lock() {
            *failed = None;
        }
        Ok(())
    }

    /// Whether the files differ from the last good read (appeared, went,
    /// or were written), so a reload is due: at once for a change not yet
    /// tried, and again a minute after a reload of the same files failed
    /// (a fix that changes no file, such as its permissions, is taken then).
    pub fn changed(&self) -> bool {
        let now = fingerprint(&self.source);
        if self.seen.lock().is_ok_and(|last| *last == now) {
            return false;
        }
        match self.failed.lock().as_deref() {
            Ok(Some((files, at))) if *files == now => at.elapsed() >= Duration::from_secs(60),
            _ => true,
        }
    }

    /// The names served, for logs: each certificate's DNS names.
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = match &self.source {
            Source::Dir { dir: Some(dir), .. } => read_dir_certs(dir)
                .map(|certs| certs.into_iter().flat_map(|c| c.names).collect())
                .unwrap_or_default(),
            _ => Vec::new(),
        };
        if let Ok(certs) = self.certs.lock() {
            names.extend(certs.stored.iter().flat_map(|c| c.names.iter().cloned()));
        }
        names
    }

    /// The acceptor for the next connection.
    pub fn acceptor(&self) -> tokio_rustls::TlsAcceptor {
        tokio_rustls::TlsAcceptor::from(self.config.load_full())
    }
}

/// What the files of `source` look like now (following symlinks, as
/// certbot's `live/` are): path, modification time, length.
fn fingerprint(source: &Source) -> Fingerprint {
    let files: Vec<PathBuf> = match source {
        Source::Pair { cert, key } => vec![cert.clone(), key.clone()],
        Source::Dir { dir: None, .. } => Vec::new(),
        Source::Dir { dir: Some(dir), .. } => subdirectories(dir)
            .into_iter()
            .flat_map(|d| [d.join("fullchain.pem"), d.join("privkey.pem")])
            .collect(),
    };
    files
        .into_iter()
        .map(|path| {
            let meta = std::fs::metadata(&path).ok();
            let modified = meta.as_ref().and_then(|m| m.modified().ok());
            let len = meta.map_or(0, |m| m.len());
            (path, modified, len)
        })
        .collect()
}

/// The subdirectories of `dir` that hold a `fullchain.pem`, sorted.
fn subdirectories(dir: &Path) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.join("fullchain.pem").exists())
        .collect();
    found.sort();
    found
}

/// The notAfter of a certificate, UNIX seconds (`i64::MAX` if unreadable).
fn not_after(der: &CertificateDer<'_>) -> i64 {
    x509_parser::parse_x509_certificate(der)
        .map(|(_, cert)| cert.validity().not_after.timestamp())
        .unwrap_or(i64::MAX)
}

/// The server configuration of `source` (with the store's certificates
/// `certs`), and when the first of its certificates expires.
fn build(source: &Source, certs: &Certs) -> Result<(rustls::ServerConfig, i64), TlsError> {
    match source {
        Source::Pair { cert, key } => {
            let expires = CertificateDer::pem_file_iter(cert)
                .ok()
                .and_then(|mut chain| chain.next())
                .and_then(Result::ok)
                .map_or(i64::MAX, |leaf| not_after(&leaf));
            Ok((server_config(cert, key)?, expires))
        }
        Source::Dir { dir, on_unknown } => {
            let certs: Vec<&DirCert> = certs.dir.iter().chain(&certs.stored).collect();
            // Each name goes to the certificate holding it that expires
            // last (an abandoned lineage never shadows a renewed one).
            let mut chosen: HashMap<&str, &DirCert> = HashMap::new();
            for &cert in &certs {
                for name in &cert.names {
                    let slot = chosen.entry(name.as_str()).or_insert(cert);
                    if cert.not_after > slot.not_after {
                        *slot = cert;
                    }
                }
            }
            let expires = chosen.values().map(|c| c.not_after).min().unwrap_or(i64::MAX);
            let mut exact = HashMap::new();
            let mut wildcard = HashMap::new();
            for (name, cert) in chosen {
                match name.strip_prefix("*.") {
                    Some(parent) => wildcard.insert(parent.to_string(), cert.key.clone()),
                    None => exact.insert(name.to_string(), cert.key.clone()),
                };
            }
            let resolver = SniCerts {
                exact,
                wildcard,
                on_unknown: on_unknown.clone(),
            };
            let mut config = rustls::ServerConfig::builder_with_provider(provider())
                .with_safe_default_protocol_versions()
                .map_err(|e| TlsError::Dir {
                    path: dir.clone().unwrap_or_default(),
                    reason: e.to_string(),
                })?
                .with_no_client_auth()
                .with_cert_resolver(Arc::new(resolver));
            config.alpn_protocols = vec![b"http/1.1".to_vec()];
            Ok((config, expires))
        }
    }
}

/// The certificates of a source's directory (none for a pair, or without a
/// directory).
fn read_source_dir(source: &Source) -> Result<Vec<DirCert>, TlsError> {
    match source {
        Source::Dir { dir: Some(dir), .. } => read_dir_certs(dir),
        _ => Ok(Vec::new()),
    }
}

/// One certificate of a directory or the store, with the DNS names it holds.
#[derive(Clone)]
struct DirCert {
    names: Vec<String>,
    key: Arc<CertifiedKey>,
    /// Its notAfter, UNIX seconds.
    not_after: i64,
}

/// Every `DIR/*/fullchain.pem` with its `privkey.pem`; an error names the file.
fn read_dir_certs(dir: &Path) -> Result<Vec<DirCert>, TlsError> {
    let fail = |path: &Path, reason: String| TlsError::Dir {
        path: path.into(),
        reason,
    };
    if !dir.is_dir() {
        return Err(fail(dir, "not a directory".into()));
    }
    let mut certs = Vec::new();
    for sub in subdirectories(dir) {
        let chain_path = sub.join("fullchain.pem");
        let key_path = sub.join("privkey.pem");
        let chain = CertificateDer::pem_file_iter(&chain_path)
            .map_err(|e| fail(&chain_path, e.to_string()))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| fail(&chain_path, format!("not a PEM certificate chain: {e}")))?;
        let key = PrivateKeyDer::from_pem_file(&key_path)
            .map_err(|e| fail(&key_path, format!("no PEM private key read ({e})")))?;
        let cert = certified(chain, key).map_err(|reason| fail(&sub, reason))?;
        certs.push(cert);
    }
    if certs.is_empty() {
        return Err(fail(
            dir,
            "no certificate: expected DIR/NAME/fullchain.pem and DIR/NAME/privkey.pem (certbot's live/ layout)".into(),
        ));
    }
    Ok(certs)
}

/// A chain and its key, checked: the leaf names a DNS name and the key is
/// its own. The reason says which part is wrong, never the key.
fn certified(chain: Vec<CertificateDer<'static>>, key: PrivateKeyDer<'static>) -> Result<DirCert, String> {
    let Some(leaf) = chain.first() else {
        return Err("no certificate in the chain".into());
    };
    let names: Vec<String> = webpki::EndEntityCert::try_from(leaf)
        .map_err(|e| format!("the first certificate cannot be read: {e}"))?
        .valid_dns_names()
        .map(str::to_ascii_lowercase)
        .collect();
    if names.is_empty() {
        return Err("the certificate names no DNS name (subjectAltName)".into());
    }
    let signing = provider()
        .key_provider
        .load_private_key(key)
        .map_err(|e| format!("the key cannot sign: {e}"))?;
    let certified = CertifiedKey::new(chain, signing);
    certified
        .keys_match()
        .map_err(|e| format!("privkey.pem is not the key of fullchain.pem: {e}"))?;
    let not_after = certified.end_entity_cert().map_or(i64::MAX, not_after);
    Ok(DirCert {
        names,
        key: Arc::new(certified),
        not_after,
    })
}

/// Chooses a certificate by the name the client asked for.
struct SniCerts {
    exact: HashMap<String, Arc<CertifiedKey>>,
    /// By the parent of `*.`: `example.com` for `*.example.com`.
    wildcard: HashMap<String, Arc<CertifiedKey>>,
    on_unknown: OnUnknownHost,
}

impl std::fmt::Debug for SniCerts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SniCerts")
            .field("exact", &self.exact.keys().collect::<Vec<_>>())
            .field("wildcard", &self.wildcard.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl ResolvesServerCert for SniCerts {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let found = hello.server_name().and_then(|name| {
            let name = name.to_ascii_lowercase();
            self.exact.get(&name).cloned().or_else(|| {
                let (_, parent) = name.split_once('.')?;
                self.wildcard.get(parent).cloned()
            })
        });
        if found.is_none() {
            tracing::debug!(sni = ?hello.server_name(), "TLS: no certificate for this host");
            (self.on_unknown)();
        }
        found
    }
}

/// ring, as every other TLS client in the binary (reqwest, sqlx): one
/// crypto library, built with a C compiler only. rustls 0.23.48 marks it
/// deprecated because ring has no post-quantum key exchange; moving to
/// aws-lc-rs is a decision for the whole binary, not one listener.
fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    #[allow(deprecated)]
    Arc::new(rustls::crypto::ring::default_provider())
}

fn server_config(cert_path: &Path, key_path: &Path) -> Result<rustls::ServerConfig, TlsError> {
    let cert_error = |reason: String| TlsError::Cert {
        path: cert_path.into(),
        reason,
    };
    let chain = CertificateDer::pem_file_iter(cert_path)
        .map_err(|e| cert_error(e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| cert_error(format!("not a PEM certificate chain: {e}")))?;
    if chain.is_empty() {
        return Err(cert_error(
            "no certificate in the file (PEM, `-----BEGIN CERTIFICATE-----`)".into(),
        ));
    }
    let key = PrivateKeyDer::from_pem_file(key_path).map_err(|e| TlsError::Key {
        path: key_path.into(),
        reason: format!("no PEM private key read ({e})"),
    })?;
    let mut config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Pair(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| TlsError::Pair(e.to_string()))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}
