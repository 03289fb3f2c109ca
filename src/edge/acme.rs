//! Certificates from an ACME server (RFC 8555) for every host the table
//! serves (`--acme-directory`), with `instant-acme`.
//!
//! One task per node that has the flag. It looks at start, when the next
//! certificate or failed name is due (at the latest every
//! `--acme-check-interval`), and soon after the table changes, for names
//! without a stored certificate, with one two thirds into its lifetime, or
//! with one another directory issued; renewals first, then at most
//! [`NEW_PER_LOOK`] new names. It orders each alone:
//! 1. the HTTP-01 challenge's file is written to the store as a
//!    [`VerificationFile`] at `/.well-known/acme-challenge/TOKEN`, through
//!    the [`Writer`] like any admin write: every node of a fleet follows
//!    the change log and answers it on its plain scan listener (files
//!    answer on any port of their host, [`crate::model::table::HostTable::file`]);
//! 2. after [`SETTLE`] (the fleet's other nodes apply it), the server is
//!    told to validate; the order is polled until ready;
//! 3. `instant-acme` makes a key and CSR and finalizes; the chain and key
//!    go to the store ([`crate::replication::store::Certificates::put_certificate`]), logged, so that
//!    every node's TLS listener serves them
//!    ([`crate::edge::http::tls::TlsFiles::set_stored`]);
//! 4. the challenge files are removed, whatever happened (an order cut
//!    short by a stop leaves them to the next start, which removes them).
//!
//! Only one node of a fleet orders at a time: the holder of a lease in the
//! store (`acme_lease`, [`LEASE`]), renewed at every look and before every
//! order, taken over by another node with the flag once it lapsed.
//!
//! A name that failed waits ([`Backoff`]: 5 minutes, doubling to 6 hours)
//! before it is tried again. A certificate whose name the table no longer
//! serves is removed once it would have been renewed. The account is made once per directory and
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

/// How long one order may take, from the order to the stored certificate:
/// more than its parts' own limits (a minute for validation, a minute for
/// the certificate, 30 s a request), so a certificate issued is not thrown
/// away by this one.
const ORDER_TIMEOUT: Duration = Duration::from_secs(300);

/// What `--acme-*` asked for.
#[derive(Clone)]
pub struct AcmeConfig {
    pub directory: String,
    pub email: Option<String>,
    pub check_interval: Duration,
    /// `--ca-file`'s certificates, trusted beside the platform's.
    pub roots: Vec<reqwest::Certificate>,
}

impl AcmeConfig {
    /// Checks the flags, with a message naming the one to fix: the
    /// directory is `https` (`http` only on loopback, for a test server),
    /// the contact an e-mail address.
    pub fn check(&self) -> Result<(), String> {
        let url = url::Url::parse(&self.directory)
            .map_err(|e| format!("--acme-directory {}: not a URL ({e})", self.directory))?;
        let loopback = crate::replication::roots::is_loopback(&url);
        if !(url.scheme() == "https" || (url.scheme() == "http" && loopback)) {
            return Err(format!(
                "--acme-directory {}: must be an https URL (http only on loopback, for a test server)",
                self.directory
            ));
        }
        if let Some(email) = &self.email {
            let ok = email
                .split_once('@')
                .is_some_and(|(user, domain)| !user.is_empty() && domain.contains('.'))
                && !email.contains(|c: char| c.is_whitespace() || c.is_control() || c == ',');
            if !ok {
                return Err(format!("--acme-email {email}: not an e-mail address"));
            }
        }
        if self.check_interval < Duration::from_secs(1) {
            return Err("--acme-check-interval: must be at least 1s".into());
        }
        Ok(())
    }
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
    /// This process's name in the fleet's ACME lease.
    holder: String,
    /// Whether it held the lease at the last look (`None` before the
    /// first).
    held: Option<bool>,
}

/// How long the ACME lease lasts without renewal: the node that holds it
/// renews it at every look and before every order (each at most
/// [`ORDER_TIMEOUT`]); another node takes over once it lapsed.
const LEASE: Duration = Duration::from_secs(15 * 60);

/// When a name that failed is tried again.
#[derive(Debug, Clone, Copy)]
struct Backoff {
    failures: u32,
    until: Instant,
}

impl Backoff {
    /// 5 minutes, then twice as long after each failure, up to 6 hours:
    /// at most four failed validations of a name in the first hour (Let's
    /// Encrypt refuses a fifth).
    fn after(previous: Option<Backoff>) -> Backoff {
        let failures = previous.map_or(1, |b| b.failures + 1);
        let wait = Duration::from_secs(300)
            .saturating_mul(1 << (failures - 1).min(9))
            .min(Duration::from_secs(6 * 3600));
        Backoff {
            failures,
            until: Instant::now() + wait,
        }
    }
}

/// At most this many names without a certificate are ordered in one look
/// (renewals come first, and are not capped): a table that suddenly names
/// many hosts, by mistake or not, cannot hold up renewals or spend the
/// account's order limit at once.
const NEW_PER_LOOK: usize = 10;

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
        config.check()?;
        let http = crate::replication::roots::client_builder(&config.roots)
            .user_agent(concat!("qrlaunch/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(30))
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
            holder: {
                use rand::distr::{Alphanumeric, SampleString};
                Alphanumeric.sample_string(&mut rand::rng(), 16)
            },
            held: None,
        })
    }

    /// Takes or renews the fleet's ACME lease: only its holder orders, so
    /// nodes started with the same flags do not order the same names.
    /// Taking it anew first removes the challenge files an interrupted
    /// order left (no order of this node runs then, and the last holder's
    /// lapsed).
    async fn lease(&mut self) -> bool {
        let now = crate::replication::store::now_ms();
        let until = now + LEASE.as_millis() as i64;
        let taken = match self.store.take_acme_lease(self.holder.clone(), now, until).await {
            Ok(taken) => taken,
            Err(error) => {
                tracing::warn!(%error, "ACME: cannot take the lease; looking again later");
                false
            }
        };
        let before = self.held.replace(taken);
        if taken && before != Some(true) {
            tracing::info!(holder = self.holder, "ACME: this node orders the fleet's certificates");
            self.remove_leftovers().await;
        } else if !taken && before != Some(false) {
            tracing::info!("ACME: another node orders the fleet's certificates (it holds the lease)");
        }
        taken
    }

    /// Runs until `shutdown`: once the table is ready, looks at once, again
    /// when the next certificate or failed name is due (at the latest after
    /// `--acme-check-interval`), and after every burst of table changes
    /// that brings a name without a certificate. An order cut short by
    /// `shutdown` leaves its challenge file to the next node taking the
    /// lease.
    pub async fn run(mut self, shutdown: CancellationToken) {
        let mut status = self.replica.watch();
        tokio::select! {
            _ = status.wait_for(|s| s.bootstrapped) => {}
            () = shutdown.cancelled() => return,
        }
        let actor = || crate::replication::audit::Actor {
            key_id: String::new(),
            key_name: "qrlaunch acme".into(),
            client: None,
        };
        loop {
            let look = crate::replication::audit::scope(actor(), self.look(&shutdown));
            let next = tokio::select! {
                next = look => next,
                () = shutdown.cancelled() => return,
            };
            let sleep = tokio::time::sleep(next);
            tokio::pin!(sleep);
            status.borrow_and_update();
            loop {
                tokio::select! {
                    () = &mut sleep => break,
                    () = shutdown.cancelled() => return,
                    changed = status.changed() => {
                        if changed.is_err() {
                            return;
                        }
                        // An import changes many entries at once: wait
                        // for the table to stay still a moment.
                        tokio::select! {
                            () = tokio::time::sleep(DEBOUNCE) => {}
                            () = shutdown.cancelled() => return,
                        }
                        status.borrow_and_update();
                        if self.has_news().await {
                            break;
                        }
                    }
                }
            }
        }
    }

    /// Challenge files no order is waiting on: called as this node takes
    /// the lease anew (none of its own orders runs then, and the last
    /// holder's lease lapsed).
    async fn remove_leftovers(&self) {
        let leftovers: Vec<EntryKey> = {
            let snapshot = self.replica.load();
            snapshot
                .hosts()
                .challenge_files()
                .filter_map(|(host, path)| {
                    let host: HostName = host.parse().ok()?;
                    let path: FilePath = path.parse().ok()?;
                    Some(EntryKey::File(FileKey::new(&host, &path)))
                })
                .collect()
        };
        for key in leftovers {
            match self.writer.delete(key).await {
                Ok(_) => tracing::info!("ACME: removed a challenge file an interrupted order left"),
                Err(error) => tracing::warn!(%error, "ACME: a leftover challenge file could not be removed"),
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
    /// rules, hosts with settings or files (a challenge file alone makes no
    /// host).
    fn wanted(&self) -> BTreeSet<String> {
        let snapshot = self.replica.load();
        let mut names = BTreeSet::new();
        let hosts = self
            .codes
            .hosts()
            .chain(snapshot.rule_hosts())
            .chain(snapshot.hosts().served_names());
        for host in hosts {
            if is_dns_name(host) {
                names.insert(host.to_ascii_lowercase());
            }
        }
        names
    }

    /// Orders what is due: renewals first (soonest due first), then up to
    /// [`NEW_PER_LOOK`] names without a certificate; removes certificates
    /// of names the table no longer serves once they would be renewed.
    /// Returns how long until the next look is due.
    async fn look(&mut self, shutdown: &CancellationToken) -> Duration {
        let retry = Duration::from_secs(60).min(self.config.check_interval);
        let stored = match self.store.certificates().await {
            Ok(stored) => stored,
            Err(error) => {
                tracing::warn!(%error, "ACME: cannot read the stored certificates; looking again in a minute");
                return retry;
            }
        };
        if !self.lease().await {
            return self.config.check_interval.min(LEASE);
        }
        let now = now_unix();
        let wanted = self.wanted();
        for cert in &stored {
            if !wanted.contains(&cert.name) && now >= cert.renew_after {
                match self.store.delete_certificate(cert.name.clone()).await {
                    Ok(_) => tracing::info!(name = cert.name, "ACME: certificate removed: its host left the table"),
                    Err(error) => tracing::warn!(%error, name = cert.name, "ACME: a certificate could not be removed"),
                }
            }
        }
        let by_name: HashMap<&str, &StoredCertificate> = stored.iter().map(|c| (c.name.as_str(), c)).collect();
        let mut renewals: Vec<(i64, String)> = Vec::new();
        let mut new = Vec::new();
        for name in &wanted {
            if self.waiting(name) {
                continue;
            }
            match by_name.get(name.as_str()) {
                Some(cert) if cert.issuer != self.config.directory => renewals.push((0, name.clone())),
                Some(cert) if now >= cert.renew_after => renewals.push((cert.renew_after, name.clone())),
                Some(_) => {}
                None => new.push(name.clone()),
            }
        }
        renewals.sort();
        new.truncate(NEW_PER_LOOK);
        let due: Vec<(bool, String)> = renewals
            .into_iter()
            .map(|(_, name)| (true, name))
            .chain(new.into_iter().map(|name| (false, name)))
            .collect();
        if !due.is_empty() {
            match self.account().await {
                Ok(account) => {
                    for (renewal, name) in due {
                        if shutdown.is_cancelled() || !self.lease().await {
                            break;
                        }
                        self.order_one(&account, &name, renewal).await;
                    }
                }
                Err(error) => {
                    tracing::warn!(%error, directory = %self.config.directory, "ACME: no account; looking again later");
                    for (_, name) in &due {
                        self.backoff
                            .insert(name.clone(), Backoff::after(self.backoff.get(name).copied()));
                    }
                }
            }
        }
        self.next_look(&stored, &wanted)
    }

    /// One order, counted and logged; a failure backs the name off.
    async fn order_one(&mut self, account: &Account, name: &str, renewal: bool) {
        match self.order(account, name).await {
            Ok(cert) => {
                self.backoff.remove(name);
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
                let backoff = Backoff::after(self.backoff.get(name).copied());
                self.backoff.insert(name.to_string(), backoff);
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

    /// How long until a stored certificate is due or a failed name may be
    /// tried again, at most `--acme-check-interval`.
    fn next_look(&self, stored: &[StoredCertificate], wanted: &BTreeSet<String>) -> Duration {
        let now = now_unix();
        let renewal = stored
            .iter()
            .filter(|c| wanted.contains(&c.name) && c.issuer == self.config.directory)
            .map(|c| Duration::from_secs(c.renew_after.saturating_sub(now).max(1) as u64))
            .min();
        let retry = self
            .backoff
            .values()
            .map(|b| b.until.saturating_duration_since(Instant::now()) + Duration::from_secs(1))
            .min();
        [Some(self.config.check_interval), renewal, retry]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(self.config.check_interval)
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

    /// One order for `name` within [`ORDER_TIMEOUT`], its challenge files
    /// removed afterwards whatever happened.
    async fn order(&self, account: &Account, name: &str) -> Result<StoredCertificate, OrderError> {
        let mut files = Vec::new();
        let result = tokio::time::timeout(ORDER_TIMEOUT, self.order_with(account, name, &mut files))
            .await
            .unwrap_or_else(|_| Err(OrderError::Other(format!("took over {ORDER_TIMEOUT:?}"))));
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
            issuer: self.config.directory.clone(),
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
        assert!(second > Duration::from_secs(590) && second <= Duration::from_secs(600));
    }
}
