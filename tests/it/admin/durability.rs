//! No acknowledged write is ever lost: a client writes codes one by one
//! while the server is killed with SIGKILL at a random moment; after a
//! restart on the same data directory every acknowledged code resolves.

use crate::support::*;
use reqwest::Method;
use std::time::{Duration, Instant};

/// The kill moment of `run`: 150 to 750 ms after writes start, from the
/// test's seed (printed; `QRLAUNCH_TEST_SEED` repeats a run).
fn kill_delay(seed: u64, run: u64) -> Duration {
    let mixed = (seed ^ run.wrapping_mul(0x9E37_79B9_7F4A_7C15)).wrapping_mul(0xBF58_476D_1CE4_E5B9) >> 33;
    Duration::from_millis(150 + mixed % 600)
}

#[test]
fn acknowledged_writes_survive_sigkill() {
    let seed = test_seed("acknowledged_writes_survive_sigkill");
    let data_dir = temp_dir();
    let data = data_dir.path().join("data");
    for run in 0..4u64 {
        let server = Server::start_on(&data, &[]);
        let (admin, token) = (server.admin.clone(), server.token.clone());
        let writer = std::thread::spawn(move || {
            let client = Client::builder().timeout(Duration::from_secs(5)).build().unwrap();
            let mut acknowledged = Vec::new();
            let deadline = Instant::now() + Duration::from_secs(20);
            for i in 0..100_000 {
                if Instant::now() > deadline {
                    break;
                }
                let code = format!("r{run}n{i}");
                let sent = client
                    .put(format!("{admin}/admin/v1/codes/{code}"))
                    .bearer_auth(&token)
                    .json(&code_body("pages/durable/index", &format!("run={run}&i={i}")))
                    .send();
                match sent {
                    Ok(r) if r.status().is_success() => acknowledged.push(code),
                    // The server died mid-request: this write was never acknowledged.
                    _ => break,
                }
            }
            acknowledged
        });
        // A random moment is the point of this test: not a condition.
        std::thread::sleep(kill_delay(seed, run));
        server.kill9();
        let acknowledged = writer.join().unwrap();
        assert!(
            !acknowledged.is_empty(),
            "run {run}: no write was acknowledged before the kill"
        );

        let restarted = Server::start_on(&data, &[]);
        for code in &acknowledged {
            let scan = restarted.scan(&format!("/{code}"));
            assert_eq!(
                scan.status(),
                302,
                "run {run}: acknowledged code {code} lost after SIGKILL"
            );
        }
        let stored = restarted.get_admin(&format!("/admin/v1/codes/{}", acknowledged.last().unwrap()));
        assert_eq!(stored.status(), 200);
        // Leave the store as the next run finds it.
        drop(restarted);
    }
    // Writes of every run are still there at the end.
    let last = Server::start_on(&data, &[]);
    assert_eq!(
        last.admin(Method::GET, "/admin/v1/codes/r0n0").send().unwrap().status(),
        200
    );
}
