//! The parsers of what people type and guests report: sizes, fractions, rates, durations, CIDRs
//! and ranges, addresses, MACs, DNS names. Never a panic, and what they accept holds its rule.
#![no_main]

use common::{linkmodel, size, untrusted};
use ip_budget::ipnet::IpNet;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = size::parse_size(text);
    if let Ok(f) = size::parse_fraction(text) {
        assert!((0.0..=10.0).contains(&f), "{f}");
    }
    if let Ok(rate) = linkmodel::parse_rate(text) {
        assert!(
            rate > 0.0 && rate <= linkmodel::MAX_RATE_BYTES_PER_SEC,
            "{rate}"
        );
    }
    let _ = linkmodel::parse_duration_secs(text);
    if let Ok(range) = ip_budget::parse_range(text) {
        assert!(range.first <= range.last);
    }
    if let Ok(net) = text.parse::<IpNet>() {
        if ip_budget::check_network(&net).is_ok() {
            let subnet = ip_budget::Subnet::new(net);
            let size = subnet.size();
            let reserved = ip_budget::parse_range(text)
                .map(|r| subnet.reserved_count(&[r]))
                .unwrap_or(0);
            assert!(reserved <= size);
        }
    }
    let _ = untrusted::parse_ip(text);
    if let Some(mac) = untrusted::parse_mac(text) {
        assert_eq!(untrusted::parse_mac(&mac).as_deref(), Some(mac.as_str()));
    }
    if untrusted::is_dns_name(text) {
        assert!(!text.chars().any(|c| c.is_control() || c.is_whitespace()));
    }
    let shown = untrusted::for_terminal(text);
    assert!(!shown.chars().any(char::is_control), "{shown:?}");
});
