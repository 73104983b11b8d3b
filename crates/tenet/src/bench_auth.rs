//! `tenet bench auth`: what checking a request's token costs. A store with `--tokens`
//! tokens (a tenant's, of every role); `Tokens::authenticate` of an
//! `Authorization: Bearer` header, timed call by call, against its floor — the one
//! `blake3` hash of the token that any check must make — in ABBA order.

use std::time::Instant;

use hdrhistogram::Histogram;
use tenet_server::auth::{Caller, Role};
use tenet_server::service::Service;
use tenet_store::{Store, StoreOptions};

use crate::bench::temp_dir;
use crate::output::CliError;

/// Nanoseconds of `f`, call by call.
fn time(calls: u64, mut f: impl FnMut()) -> Histogram<u64> {
    let mut h = Histogram::<u64>::new(3).expect("histogram");
    for _ in 0..calls {
        let t = Instant::now();
        f();
        let _ = h.record(t.elapsed().as_nanos() as u64);
    }
    h
}

fn line(what: &str, h: &Histogram<u64>) {
    println!(
        "  {what:<34} p50 {:>6.2} µs   p99 {:>6.2} µs   max {:>7.2} µs",
        h.value_at_quantile(0.5) as f64 / 1000.0,
        h.value_at_quantile(0.99) as f64 / 1000.0,
        h.max() as f64 / 1000.0
    );
}

pub fn run(tokens: u64, checks: u64) -> Result<(), CliError> {
    let dir = temp_dir("tenet-bench-auth-")?;
    let store = Store::open(dir.path(), StoreOptions::default())?;
    store.create_tenant("acme", Default::default())?;
    let svc = Service::new(store)?;
    let acme = svc.store().tenant("acme")?.id;
    let mut last = String::new();
    for i in 0..tokens {
        let role = Role::ALL[(i % 3) as usize];
        let (t, _) = svc
            .tokens()
            .create(
                &format!("bench {i}"),
                role,
                Some(acme),
                None,
                &Caller::local(),
            )
            .map_err(CliError::from)?;
        last = t;
    }
    let header = format!("Bearer {last}");
    println!("token check: {tokens} tokens, {checks} checks a round, ABBA");
    let mut check = Histogram::<u64>::new(3).expect("histogram");
    let mut floor = Histogram::<u64>::new(3).expect("histogram");
    for round in 0..4 {
        // A B B A: the check, the floor, the floor, the check.
        if round == 0 || round == 3 {
            check
                .add(time(checks, || {
                    let c = svc.tokens().authenticate(Some(&header));
                    assert!(c.is_ok());
                }))
                .expect("same bounds");
        } else {
            floor
                .add(time(checks, || {
                    std::hint::black_box(blake3::hash(last.as_bytes()));
                }))
                .expect("same bounds");
        }
    }
    line("Tokens::authenticate", &check);
    line("floor: blake3 of the token", &floor);
    let p50 = check.value_at_quantile(0.5) as f64 / 1000.0;
    println!(
        "  check p50 {p50:.2} µs = {:.1}× the floor; target ≤ 20 µs: {}",
        check.value_at_quantile(0.5) as f64 / floor.value_at_quantile(0.5).max(1) as f64,
        if p50 <= 20.0 { "met" } else { "NOT met" }
    );
    Ok(())
}
