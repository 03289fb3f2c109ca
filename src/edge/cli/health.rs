//! `qrlaunch healthcheck`: asks a node on this host whether it answers
//! (`GET /healthz` on its scan listener), for a container's `HEALTHCHECK`
//! or a supervisor, with no curl in the image.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

/// `Ok` when the node at `listen` answers `/healthz` with `200` within
/// `timeout`; else what went wrong. An unspecified address (`0.0.0.0`,
/// `[::]`) is asked on loopback.
pub fn healthcheck(listen: SocketAddr, timeout: Duration) -> Result<(), String> {
    let mut addr = listen;
    if addr.ip().is_unspecified() {
        addr.set_ip(match addr.ip() {
            IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::LOCALHOST),
        });
    }
    let url = format!("http://{addr}/healthz");
    let client = reqwest::blocking::Client::builder()
        .timeout(timeout)
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| e.to_string())?;
    let response = client
        .get(&url)
        .send()
        .map_err(|e| format!("{url}: no answer ({})", e.without_url()))?;
    match response.status().as_u16() {
        200 => Ok(()),
        status => Err(format!("{url}: {status}")),
    }
}
