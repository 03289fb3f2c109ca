//! CA certificates an HTTPS client trusts beside the platform's (rustls
//! with the system's roots): `--ca-file` of the purge client, the CLI, the
//! WeChat and ACME clients, for servers whose certificates a private CA
//! signed; and the two rules every such client shares.

use std::path::Path;

/// The certificates of a PEM file (one or more `BEGIN CERTIFICATE`
/// blocks). The message names the file and what is wrong.
pub fn read(path: &Path) -> Result<Vec<reqwest::Certificate>, String> {
    let pem = std::fs::read(path).map_err(|e| format!("--ca-file {}: {e}", path.display()))?;
    let roots = reqwest::Certificate::from_pem_bundle(&pem)
        .map_err(|e| format!("--ca-file {}: not a PEM certificate bundle: {e}", path.display()))?;
    if roots.is_empty() {
        return Err(format!(
            "--ca-file {}: no certificate in the file (PEM, `-----BEGIN CERTIFICATE-----`)",
            path.display()
        ));
    }
    Ok(roots)
}

/// An async client builder trusting the platform's roots and `roots`,
/// following no redirect (a secret or token must not travel to whatever
/// host a `30x` names); each client adds its own timeouts.
pub fn client_builder(roots: &[reqwest::Certificate]) -> reqwest::ClientBuilder {
    roots.iter().fold(
        reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()),
        |builder, root| builder.add_root_certificate(root.clone()),
    )
}

/// Whether `url` names this host (a loopback address or `localhost`): the
/// one place plain `http://` is accepted for what carries a secret.
pub fn is_loopback(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}
