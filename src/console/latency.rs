//! Callback latency over the last hour, minute by minute, for the console's picture: read
//! from the metrics rayo already keeps (the `/metrics` histogram of the callback route), as
//! the difference between one minute's buckets and the next. Per instance, like the metrics.

use std::collections::VecDeque;
use std::sync::Mutex;

use serde::Serialize;

/// The route whose latency is drawn: what payers wait on.
pub const ROUTE: &str = "/lnurlp/{name}/callback";
/// How many samples are kept: an hour of minutes.
pub const KEPT: usize = 60;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LatencySample {
    pub at: u64,
    pub requests: u64,
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
}

#[derive(Default)]
pub struct LatencyTrail {
    inner: Mutex<Trail>,
}

#[derive(Default)]
struct Trail {
    previous: Vec<(f64, u64)>,
    samples: VecDeque<LatencySample>,
}

/// The callback route's cumulative buckets (upper bound in seconds, count) in a Prometheus
/// text exposition.
pub fn callback_buckets(exposition: &str) -> Vec<(f64, u64)> {
    let route = format!("route=\"{ROUTE}\"");
    let mut buckets: Vec<(f64, u64)> = exposition
        .lines()
        .filter(|line| {
            line.contains("http_request_duration_seconds_bucket{") && line.contains(&route)
        })
        .filter_map(|line| {
            let le = line.split("le=\"").nth(1)?.split('"').next()?;
            let bound = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().ok()?
            };
            let count = line.rsplit(' ').next()?.trim().parse().ok()?;
            Some((bound, count))
        })
        .collect();
    buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    buckets
}

/// The `q` quantile of a window's cumulative buckets, in milliseconds, interpolated within
/// its bucket; `None` without requests.
pub fn quantile(buckets: &[(f64, u64)], q: f64) -> Option<f64> {
    let total = buckets.last()?.1;
    if total == 0 {
        return None;
    }
    let rank = q * total as f64;
    let mut lower = (0.0, 0u64);
    for &(bound, count) in buckets {
        if count as f64 >= rank {
            // The last bucket has no upper bound: say its lower one.
            if bound.is_infinite() {
                return Some(lower.0 * 1000.0);
            }
            let within = (count - lower.1) as f64;
            let share = if within > 0.0 {
                (rank - lower.1 as f64) / within
            } else {
                1.0
            };
            return Some((lower.0 + (bound - lower.0) * share.clamp(0.0, 1.0)) * 1000.0);
        }
        lower = (bound, count);
    }
    None
}

impl LatencyTrail {
    /// Takes one sample from `exposition` (the metrics now), at `at`.
    pub fn sample(&self, exposition: &str, at: u64) {
        let now = callback_buckets(exposition);
        let mut trail = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let window: Vec<(f64, u64)> = now
            .iter()
            .map(|&(bound, count)| {
                let before = trail
                    .previous
                    .iter()
                    .find(|(b, _)| *b == bound)
                    .map_or(0, |(_, c)| *c);
                (bound, count.saturating_sub(before))
            })
            .collect();
        let sample = LatencySample {
            at,
            requests: window.last().map_or(0, |(_, c)| *c),
            p50_ms: quantile(&window, 0.5),
            p99_ms: quantile(&window, 0.99),
        };
        trail.previous = now;
        trail.samples.push_back(sample);
        while trail.samples.len() > KEPT {
            trail.samples.pop_front();
        }
    }

    /// The samples, oldest first.
    pub fn samples(&self) -> Vec<LatencySample> {
        let trail = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        trail.samples.iter().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exposition(counts: [u64; 3]) -> String {
        format!(
            "# TYPE rayo_http_request_duration_seconds histogram\n\
             rayo_http_request_duration_seconds_bucket{{le=\"0.001\",route=\"/lnurlp/{{name}}/callback\"}} {}\n\
             rayo_http_request_duration_seconds_bucket{{le=\"0.002\",route=\"/lnurlp/{{name}}/callback\"}} {}\n\
             rayo_http_request_duration_seconds_bucket{{le=\"+Inf\",route=\"/lnurlp/{{name}}/callback\"}} {}\n\
             rayo_http_request_duration_seconds_bucket{{le=\"0.001\",route=\"/.well-known/lnurlp/{{name}}\"}} 999\n",
            counts[0], counts[1], counts[2]
        )
    }

    #[test]
    fn each_sample_is_the_minute_since_the_one_before() {
        let trail = LatencyTrail::default();
        trail.sample(&exposition([50, 100, 100]), 60);
        trail.sample(&exposition([50, 100, 100]), 120);
        trail.sample(&exposition([50, 150, 200]), 180);
        let samples = trail.samples();
        assert_eq!(samples[0].requests, 100);
        assert_eq!(samples[0].p50_ms, Some(1.0));
        assert_eq!(samples[1].requests, 0, "a quiet minute");
        assert_eq!(samples[1].p99_ms, None);
        // Of the third minute's hundred, half took over 2 ms: the median is at 2 ms, the
        // 99th percentile beyond the last bound, said as that bound.
        assert_eq!(samples[2].requests, 100);
        assert_eq!(samples[2].p50_ms, Some(2.0));
        assert_eq!(samples[2].p99_ms, Some(2.0));
    }

    #[test]
    fn the_real_metrics_name_the_callback_route() {
        let metrics = crate::metrics::Metrics::new();
        metrics
            .http_latency
            .get_or_create(&crate::metrics::RouteOnly {
                route: ROUTE.into(),
            })
            .observe(0.0015);
        let buckets = callback_buckets(&metrics.render());
        assert!(!buckets.is_empty());
        assert_eq!(buckets.last().unwrap().1, 1);
        let p50 = quantile(&buckets, 0.5).unwrap();
        assert!((1.0..=3.2).contains(&p50), "{p50}");
    }

    #[test]
    fn nothing_at_all_has_no_quantile() {
        assert_eq!(quantile(&[], 0.5), None);
        assert_eq!(quantile(&[(0.1, 0), (f64::INFINITY, 0)], 0.5), None);
    }
}
