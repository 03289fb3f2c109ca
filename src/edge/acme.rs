//! Certificates from an ACME server (RFC 8555) for every host the table
//! serves (`--acme-directory`), with `instant-acme`.
//!
//! One task per node that has the flag. It looks at start, every
//! `--acme-check-interval`, and soon after the table changes, for names
//! without a stored certificate or with one two thirds into its lifetime,
//! and orders each alone:
//! 1. the HTTP-01 challenge's file is written to the store as a
//!    [`VerificationFile`] at `/.well-known/acme-challenge/TOKEN`, through
//!    the [`Writer`] like any admin write: every node of a fleet follows
//!    the change log and answers it on its plain scan listener (files
//!    answer on any port of their host, [`crate::model::table::HostTable::file`]);
//! 2. after [`SETTLE`] (the fleet's other nodes apply it), the server is
//!    told to validate; the order is polled until ready;
//! 3. `instant-acme` makes a key and CSR and finalizes; the chain and key
//!    go to the store ([`Certificates::put_certificate`]), logged, so that
//!    every node's TLS listener serves them
//!    ([`crate::edge::http::tls::TlsFiles::set_stored`]);
//! 4. the challenge files are removed, whatever happened.
//!
//! A name that failed waits ([`Backoff`]: 1 minute, doubling to 6 hours)
//! before it is tried again. The account is made once per directory and
//! kept in the store, so a fleet shares it. Nothing here is on the scan
//! path: it runs on the node's other runtime.

use crate::model::decide::CodeHosts;
use crate::model::domain::{Entry, EntryKey, FileKey, FilePath, HostName, VerificationFile};
use crate::replication::metrics::Metrics;
use crate::replication::store::{Store, StoredCertificate, WriteMode};
use crate::replication::sync::Replica;
use crate::replication::writer::Writer;
use bytes::Bytes;
use http_body_util::BodyExt;
use instant_acme::{
    Account, AccountCredentials, AuthorizationStatus, BodyWrapper, BytesResponse, ChallengeType, HttpClient,
    Identifier, NewAccount, NewOrder, OrderStatus, RetryPolicy,
};
use std::collections::{BTreeSet, HashMap};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// How long a challenge file is left for the other nodes of a fleet to
/// apply before the server is told to look (they follow within
/// milliseconds through NOTIFY; this covers a busy one).
pub const SETTLE: Duration = Duration::from_secs(1);

/// After the table changes, how long the task waits for more changes
/// before it looks for new names (an import changes many at once).
const DEBOUNCE: Duration = Duration::from_secs(2);

/// How long one order may take, from the order to the stored certificate.
const ORDER_TIMEOUT: Duration = Duration::from_secs(120);

/// What `--acme-*` asked for.
#[derive(Clone)]
pub struct AcmeConfig {
    pub directory: String,
    pub email: Option<String>,
    pub check_interval: Duration,
    /// `--ca-file`'s certificates, trusted beside the platform's.
    pub roots: Vec<reqwest::Certificate>,
}

/// Everything the task works with.
pub struct Acme {
    config: AcmeConfig,
    http: reqwest::Client,
    store: Arc<dyn Store>,
    writer: Writer,
    replica: Arc<Replica>,
    codes: CodeHosts,
    metrics: Arc<Metrics>,
    backoff: HashMap<String, Backoff>,
}

/// When a name that failed is tried again.
#[derive(Debug, Clone, Copy)]
struct Backoff {
    failures: u32,
    until: Instant,
}

impl Backoff {
    fn after(previous: Option<Backoff>) -> Backoff {
        let failures = previous.map_or(1, |b| b.failures + 1);
        let wait = Duration::from_secs(60)
            .saturating_mul(1 << (failures - 1).min(9))
            .min(Duration::from_secs(6 * 3600));
        Backoff {
            failures,
            until: Instant::now() + wait,
        }
    }
}

/// Why one order failed; never holds a key.
#[derive(Debug, thiserror::Error)]
enum OrderError {
    #[error("ACME: {0}")]
    Acme(#[from] instant_acme::Error),
    #[error("{0}")]
    Other(String),
}

impl Acme {
    pub fn new(
        config: AcmeConfig,
        store: Arc<dyn Store>,
        replica: Arc<Replica>,
        codes: CodeHosts,
        metrics: Arc<Metrics>,
    ) -> Result<Acme, String> {
        url::Url::parse(&config.directory)
            .ok()
            .filter(|u| matches!(u.scheme(), "https" | "http"))
            .ok_or_else(|| format!("--acme-directory {}: not an http(s) URL", config.directory))?;
        if let Some(email) = &config.email {
            if !email.contains('@') || email.contains(char::is_whitespace) {
                return Err(format!("--acme-email {email}: not an e-mail address"));
            }
        }
        let mut builder = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(30))
            .redirect(reqwest::redirect::Policy::none());
        for root in &config.roots {
            builder = builder.add_root_certificate(root.clone());
        }
        let http = builder
            .build()
            .map_err(|e| format!("cannot build the ACME client: {e}"))?;
        let writer = Writer::new(store.clone(), replica.clone(), metrics.clone());
        Ok(Acme {
            config,
            http,
            store,
            writer,
            replica,
            codes,
            metrics,
            backoff: HashMap::new(),
        })
    }

    /// Runs until `shutdown`: a look once the table is ready, then after
    /// every interval and every burst of table changes.
    pub async fn run(mut self, shutdown: CancellationToken) {
        let mut status = self.replica.watch();
        tokio::select! {
            _ = status.wait_for(|s| s.bootstrapped) => {}
            () = shutdown.cancelled() => return,
        }
        let mut certificates = self.replica.watch_certificates();
        loop {
            let activity = crate::replication::audit::Actor {
                key_id: String::new(),
                key_name: "qrlaunch acme".into(),
                client: None,
            };
            let look = crate::replication::audit::scope(activity, self.look());
            tokio::select! {
                () = look => {}
                () = shutdown.cancelled() => return,
            }
            let interval = tokio::time::sleep(self.config.check_interval);
            tokio::pin!(interval);
            let mut applied = status.borrow_and_update().applied;
            certificates.borrow_and_update();
            // Waits for the interval, or for the table to change (then for
            // it to stay still a moment): a new host may need a
            // certificate. A certificate stored by another node changes
            // what is due too.
            loop {
                tokio::select! {
                    () = &mut interval => break,
                    () = shutdown.cancelled() => return,
                    changed = status.changed() => {
                        if changed.is_err() {
                            return;
                        }
                        let now = status.borrow_and_update().applied;
                        if now != applied {
                            applied = now;
                            tokio::time::sleep(DEBOUNCE).await;
                            if self.has_news().await {
                                break;
                            }
                        }
                    }
                    changed = certificates.changed() => {
                        if changed.is_err() {
                            return;
                        }
                    }
                }
            }
        }
    }

    /// Whether a name the table serves has no certificate yet (and is not
    /// waiting after a failure).
    async fn has_news(&self) -> bool {
        let Ok(stored) = self.store.certificates().await else {
            return false;
        };
        let have: BTreeSet<&str> = stored.iter().map(|c| c.name.as_str()).collect();
        self.wanted()
            .iter()
            .any(|name| !have.contains(name.as_str()) && !self.waiting(name))
    }

    fn waiting(&self, name: &str) -> bool {
        self.backoff.get(name).is_some_and(|b| Instant::now() < b.until)
    }

    /// The DNS names the table serves: `--public-url` hosts, hosts of
    /// rules, hosts with settings or files.
    fn wanted(&self) -> BTreeSet<String> {
        let snapshot = self.replica.load();
        let mut names = BTreeSet::new();
        let hosts = self
            .codes
            .hosts()
            .chain(snapshot.rule_hosts())
            .chain(snapshot.hosts().names());
        for host in hosts {
            if is_dns_name(host) {
                names.insert(host.to_ascii_lowercase());
            }
        }
        names
    }

    /// Orders what is due, one name after another.
    async fn look(&mut self) {
        let stored = match self.store.certificates().await {
            Ok(stored) => stored,
            Err(error) => {
                tracing::warn!(%error, "ACME: cannot read the stored certificates; looking again later");
                return;
            }
        };
        let now = now_unix();
        let renew: HashMap<&str, i64> = stored.iter().map(|c| (c.name.as_str(), c.renew_after)).collect();
        let due: Vec<String> = self
            .wanted()
            .into_iter()
            .filter(|name| renew.get(name.as_str()).is_none_or(|&at| now >= at))
            .filter(|name| !self.waiting(name))
            .collect();
        if due.is_empty() {
            return;
        }
        let account = match self.account().await {
            Ok(account) => account,
            Err(error) => {
                tracing::warn!(%error, directory = %self.config.directory, "ACME: no account; looking again later");
                for name in &due {
                    self.backoff
                        .insert(name.clone(), Backoff::after(self.backoff.get(name).copied()));
                }
                return;
            }
        };
        for name in due {
            let renewal = renew.contains_key(name.as_str());
            let result = tokio::time::timeout(ORDER_TIMEOUT, self.order(&account, &name)).await;
            let result = result.unwrap_or_else(|_| Err(OrderError::Other(format!("took over {ORDER_TIMEOUT:?}"))));
            match result {
                Ok(cert) => {
                    self.backoff.remove(&name);
                    self.metrics.acme_order("issued");
                    tracing::info!(
                        name,
                        renewal,
                        not_after = cert.not_after,
                        renew_after = cert.renew_after,
                        "ACME: certificate stored"
                    );
                }
                Err(error) => {
                    let backoff = Backoff::after(self.backoff.get(&name).copied());
                    self.backoff.insert(name.clone(), backoff);
                    self.metrics.acme_order("failed");
                    tracing::warn!(
                        name,
                        renewal,
                        %error,
                        retry_in = ?backoff.until.saturating_duration_since(Instant::now()),
                        "ACME: no certificate"
                    );
                }
            }
        }
    }

    /// The account at this directory: the stored one, or a new one kept in
    /// the store (when two nodes make one at once, the first kept wins).
    async fn account(&self) -> Result<Account, OrderError> {
        let directory = self.config.directory.clone();
        let stored = self
            .store
            .acme_account(directory.clone())
            .await
            .map_err(|e| OrderError::Other(e.to_string()))?;
        if let Some(json) = stored {
            return self.stored_account(&json).await;
        }
        let contact: Vec<String> = self.config.email.iter().map(|e| format!("mailto:{e}")).collect();
        let contact: Vec<&str> = contact.iter().map(String::as_str).collect();
        let (account, credentials) = Account::builder_with_http(self.client())
            .create(
                &NewAccount {
                    contact: &contact,
                    terms_of_service_agreed: true,
                    only_return_existing: false,
                },
                directory.clone(),
                None,
            )
            .await?;
        let json = serde_json::to_string(&credentials).map_err(|e| OrderError::Other(e.to_string()))?;
        let kept = self
            .store
            .keep_acme_account(directory, json.clone())
            .await
            .map_err(|e| OrderError::Other(e.to_string()))?;
        if kept == json {
            tracing::info!(id = account.id(), "ACME: account made");
            Ok(account)
        } else {
            self.stored_account(&kept).await
        }
    }

    async fn stored_account(&self, json: &str) -> Result<Account, OrderError> {
        let credentials: AccountCredentials = serde_json::from_str(json)
            .map_err(|e| OrderError::Other(format!("the stored ACME account does not read: {e}")))?;
        Ok(Account::builder_with_http(self.client())
            .from_credentials(credentials)
            .await?)
    }

    fn client(&self) -> Box<dyn HttpClient> {
        Box::new(Reqwest(self.http.clone()))
    }

    /// One order for `name`, its challenge files removed afterwards.
    async fn order(&self, account: &Account, name: &str) -> Result<StoredCertificate, OrderError> {
        let mut files = Vec::new();
        let result = self.order_with(account, name, &mut files).await;
        for key in files {
            if let Err(error) = self.writer.delete(key).await {
                tracing::warn!(%error, name, "ACME: a challenge file could not be removed");
            }
        }
        result
    }

    async fn order_with(
        &self,
        account: &Account,
        name: &str,
        files: &mut Vec<EntryKey>,
    ) -> Result<StoredCertificate, OrderError> {
        let identifiers = [Identifier::Dns(name.to_string())];
        let mut order = account.new_order(&NewOrder::new(&identifiers)).await?;
        {
            let mut authorizations = order.authorizations();
            while let Some(authz) = authorizations.next().await {
                let mut authz = authz?;
                match authz.status {
                    AuthorizationStatus::Pending => {}
                    AuthorizationStatus::Valid => continue,
                    other => return Err(OrderError::Other(format!("the authorization is {other:?}"))),
                }
                let mut challenge = authz
                    .challenge(ChallengeType::Http01)
                    .ok_or_else(|| OrderError::Other("the server offers no http-01 challenge".into()))?;
                let path = FilePath::acme_challenge(&challenge.token)
                    .ok_or_else(|| OrderError::Other("the challenge's token is not a URL path segment".into()))?;
                let file = VerificationFile {
                    host: name
                        .parse::<HostName>()
                        .map_err(|e| OrderError::Other(e.message.clone()))?,
                    path,
                    body: challenge
                        .key_authorization()
                        .as_str()
                        .parse()
                        .map_err(|e: crate::model::domain::FieldError| OrderError::Other(e.message))?,
                };
                files.push(EntryKey::File(FileKey::new(&file.host, &file.path)));
                self.writer
                    .put(Entry::File(file), WriteMode::Upsert)
                    .await
                    .map_err(|e| OrderError::Other(format!("storing the challenge: {e}")))?;
                tokio::time::sleep(SETTLE).await;
                challenge.set_ready().await?;
            }
        }
        let retries = RetryPolicy::new().timeout(Duration::from_secs(60));
        let status = order.poll_ready(&retries).await?;
        if status != OrderStatus::Ready {
            let why = order
                .state()
                .error
                .as_ref()
                .map_or_else(|| format!("the order is {status:?}"), |p| p.to_string());
            return Err(OrderError::Other(why));
        }
        let key_pem = order.finalize().await?;
        let chain_pem = order.poll_certificate(&retries).await?;
        let (not_before, not_after) = validity(&chain_pem)?;
        let cert = StoredCertificate {
            name: name.to_string(),
            chain_pem,
            key_pem,
            not_before,
            not_after,
            renew_after: not_before + (not_after - not_before) * 2 / 3,
            updated_at: crate::replication::store::now_ms(),
        };
        self.store
            .put_certificate(cert.clone())
            .await
            .map_err(|e| OrderError::Other(format!("storing the certificate: {e}")))?;
        Ok(cert)
    }
}

/// The leaf's notBefore and notAfter, UNIX seconds.
fn validity(chain_pem: &str) -> Result<(i64, i64), OrderError> {
    use rustls::pki_types::pem::PemObject;
    let leaf = rustls::pki_types::CertificateDer::pem_slice_iter(chain_pem.as_bytes())
        .next()
        .and_then(Result::ok)
        .ok_or_else(|| OrderError::Other("the server sent no PEM certificate".into()))?;
    let (_, cert) = x509_parser::parse_x509_certificate(&leaf)
        .map_err(|e| OrderError::Other(format!("the server's certificate does not read: {e}")))?;
    let validity = cert.validity();
    Ok((validity.not_before.timestamp(), validity.not_after.timestamp()))
}

/// Whether a table host is a name a CA can issue for: a DNS name of at
/// least two labels, no port, no IP address, not `localhost`.
pub fn is_dns_name(host: &str) -> bool {
    if host.len() > 253 || host.parse::<std::net::IpAddr>().is_ok() || !host.contains('.') {
        return false;
    }
    if host.eq_ignore_ascii_case("localhost") || host.to_ascii_lowercase().ends_with(".localhost") {
        return false;
    }
    host.split('.').all(|label| {
        (1..=63).contains(&label.len())
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    }) && !host
        .rsplit('.')
        .next()
        .is_some_and(|tld| tld.bytes().all(|b| b.is_ascii_digit()))
}

fn now_unix() -> i64 {
    crate::replication::store::now_ms() / 1000
}

/// `instant-acme`'s HTTP through our reqwest client, which trusts
/// `--ca-file` as the purge and WeChat clients do.
struct Reqwest(reqwest::Client);

impl HttpClient for Reqwest {
    fn request(
        &self,
        request: hyper::Request<BodyWrapper<Bytes>>,
    ) -> Pin<Box<dyn Future<Output = Result<BytesResponse, instant_acme::Error>> + Send>> {
        let client = self.0.clone();
        Box::pin(async move {
            let (parts, body) = request.into_parts();
            let body = match body.collect().await {
                Ok(collected) => collected.to_bytes(),
                Err(never) => match never {},
            };
            let response = client
                .request(parts.method, parts.uri.to_string())
                .headers(parts.headers)
                .body(body)
                .send()
                .await
                .map_err(|e| instant_acme::Error::Other(Box::new(e.without_url())))?;
            let response: hyper::Response<reqwest::Body> = response.into();
            Ok(BytesResponse::from(response))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_a_ca_can_issue_for() {
        for ok in ["go.shop-example.com", "a.b.c.example.org", "xn--fiqs8s.example"] {
            assert!(is_dns_name(ok), "{ok}");
        }
        for bad in [
            "localhost",
            "a.localhost",
            "127.0.0.1",
            "[::1]",
            "go.example.com:8080",
            "example",
            "-a.example.com",
            "a..example.com",
            "a_b.example.com",
            "1.2.3.400",
        ] {
            assert!(!is_dns_name(bad), "{bad}");
        }
    }

    #[test]
    fn failures_wait_longer_each_time_up_to_six_hours() {
        let first = Backoff::after(None);
        assert_eq!(first.failures, 1);
        let mut b = first;
        for _ in 0..20 {
            b = Backoff::after(Some(b));
        }
        let wait = b.until.saturating_duration_since(Instant::now());
        assert!(wait <= Duration::from_secs(6 * 3600) && wait > Duration::from_secs(5 * 3600));
        let second = Backoff::after(Some(first))
            .until
            .saturating_duration_since(Instant::now());
        assert!(second > Duration::from_secs(100) && second <= Duration::from_secs(120));
    }
}
