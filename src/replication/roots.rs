//! CA certificates an HTTPS client trusts beside the platform's (rustls
//! with the system's roots): `--ca-file` of the purge client and the CLI,
//! for caches and admin listeners whose certificates a private CA signed.

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
