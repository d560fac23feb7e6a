use super::*;

fn store() -> std::sync::Arc<dyn Store> {
    let spec = crate::StorageSpec::Ephemeral;
    crate::storage::open::open(&spec, 1 << 20, None).expect("store")
}

#[test]
fn exposition_has_labelled_series() {
    let m = Metrics::default();
    m.close_reasons(["header_timeout", "shed"]);
    m.request("GET", "/{namespace}/{key}", 200, Duration::from_millis(2));
    m.hit();
    m.connection_closed_for("shed");
    let store = store();
    let text = m.render(store.as_ref());
    for needle in [
        "cachet_requests_total{method=\"GET\",route=\"/{namespace}/{key}\",status=\"200\"} 1\n",
        "cachet_request_duration_seconds_bucket{le=\"0.0025\",method=\"GET\",route=\"/{namespace}/{key}\"} 1\n",
        "cachet_request_duration_seconds_count{method=\"GET\",route=\"/{namespace}/{key}\"} 1\n",
        "cachet_cache_hits_total 1\n",
        "cachet_connections_closed_total{reason=\"header_timeout\"} 0\n",
        "cachet_connections_closed_total{reason=\"shed\"} 1\n",
        "cachet_tier_gets_total{tier=\"local\",backend=\"dir\",result=\"miss\"} 0\n",
        "cachet_tier_available{tier=\"local\",backend=\"dir\"} 1\n",
        "cachet_max_size_bytes 1048576\n",
        "# TYPE cachet_index_ready gauge\n",
        &format!("cachet_build_info{{version=\"{}\"}} 1\n", env!("CARGO_PKG_VERSION")),
        // The help texts stay those docs/server.md and dashboards know (one period, no more).
        "# HELP cachet_requests Requests answered, by method, route template and status.\n",
        "# HELP cachet_tier_refused Objects a storage tier refused for their size (Redis: over 512 MB).\n",
        "# TYPE cachet_request_duration_seconds histogram\n",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in\n{text}");
    }
    assert!(text.ends_with("# EOF\n"), "{text}");
    assert_eq!(text.matches("# EOF").count(), 1, "{text}");
    m.zero();
    let text = m.render(store.as_ref());
    assert!(text.contains("cachet_cache_hits_total 0\n"), "{text}");
    assert!(!text.contains("cachet_requests_total{"), "{text}");
    assert!(
        text.contains("cachet_connections_closed_total{reason=\"shed\"} 0\n"),
        "{text}"
    );
    assert_eq!(m.stats(store.as_ref()).requests, 0);
}

/// A tier's latency is a histogram whose buckets add up, as Prometheus expects.
#[test]
fn tier_latency_is_a_cumulative_histogram() {
    let mut h = Histogram::default();
    for ms in [1, 1, 20, 60_000] {
        h.observe(Duration::from_millis(ms));
    }
    let report = StoreReport {
        tiers: vec![TierReport {
            tier: "shared",
            backend: "redis",
            hits: 0,
            misses: 0,
            errors: 0,
            writes: 0,
            refused: 0,
            available: true,
            latency: vec![("get", h)],
            latency_ms: Default::default(),
        }],
        ..StoreReport::default()
    };
    let mut text = String::new();
    let mut registry = Registry::default();
    registry.register_collector(Box::new(StoreCollector {
        report,
        uptime: 1.5,
    }));
    prometheus_client::encoding::text::encode(&mut text, &registry).expect("encode");
    let l = "tier=\"shared\",backend=\"redis\",op=\"get\"";
    for needle in [
        // The crate writes `le` first; Prometheus does not mind the order.
        format!("cachet_tier_duration_seconds_bucket{{le=\"0.001\",{l}}} 2\n"),
        format!("cachet_tier_duration_seconds_bucket{{le=\"0.025\",{l}}} 3\n"),
        format!("cachet_tier_duration_seconds_bucket{{le=\"30.0\",{l}}} 3\n"),
        format!("cachet_tier_duration_seconds_bucket{{le=\"+Inf\",{l}}} 4\n"),
        format!("cachet_tier_duration_seconds_count{{{l}}} 4\n"),
        "cachet_uptime_seconds 1.5\n".to_string(),
    ] {
        assert!(text.contains(&needle), "missing {needle:?} in\n{text}");
    }
    // No chain, no upload queue.
    assert!(!text.contains("cachet_shared_uploads"), "{text}");
}
