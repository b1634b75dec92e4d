//! Realistic sample data shared by the benchmarks: 15 s scrapes with millisecond
//! jitter, a counter and a float gauge.

/// `n` samples of a counter scraped every 15 s with ±12 ms jitter (deterministic).
pub fn counter_samples(n: usize) -> (Vec<i64>, Vec<f64>) {
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut ts = Vec::with_capacity(n);
    let mut vs = Vec::with_capacity(n);
    let mut v = 1_000_000.0;
    for i in 0..n as i64 {
        ts.push(1_605_657_600_000 + i * 15_000 + (next() % 25) as i64 - 12);
        v += (next() % 100) as f64;
        vs.push(v);
    }
    (ts, vs)
}

/// `n` samples of a float gauge (random walk) on the same schedule.
pub fn gauge_samples(n: usize) -> (Vec<i64>, Vec<f64>) {
    let (ts, _) = counter_samples(n);
    let mut v: f64 = 0.5;
    let vs = (0..n)
        .map(|i| {
            v = (v + ((i * 7919 % 1000) as f64 - 500.0) / 10_000.0).abs();
            v
        })
        .collect();
    (ts, vs)
}

/// `n` samples of a full-precision random walk (steps uniform in ±1), the values of
/// the whole-plan bench's `random` profile: nearly every XOR needs a new window.
pub fn random_walk_samples(n: usize) -> (Vec<i64>, Vec<f64>) {
    let (ts, _) = counter_samples(n);
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut v: f64 = 50.0;
    let vs = (0..n)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let step = (state >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0;
            v = (v + step).abs();
            v
        })
        .collect();
    (ts, vs)
}
