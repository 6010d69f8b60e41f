//! `--dns-server`: the VM's FQDN asked of one DNS server (UDP, then TCP; A and AAAA), with
//! hickory-resolver. Only that server is asked: no system resolver, no search domains, no cache
//! across runs.

use common::untrusted::dns_name_error;
use hickory_resolver::Resolver;
use hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolverConfig, ResolverOpts};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

pub struct Dns {
    resolver: Resolver<TokioRuntimeProvider>,
}

/// `ADDR` or `ADDR:PORT` (`[v6]:PORT`); port 53 when none.
pub fn parse_server(text: &str) -> Result<SocketAddr, String> {
    if let Ok(address) = text.parse::<SocketAddr>() {
        return Ok(address);
    }
    text.trim_matches(|c| c == '[' || c == ']')
        .parse::<IpAddr>()
        .map(|ip| SocketAddr::new(ip, 53))
        .map_err(|_| format!("{text:?} is not an IP address, or ADDRESS:PORT"))
}

impl Dns {
    pub fn new(server: SocketAddr) -> Result<Dns, String> {
        let connections = [ConnectionConfig::udp(), ConnectionConfig::tcp()]
            .into_iter()
            .map(|mut c| {
                c.port = server.port();
                c
            })
            .collect();
        let name_server = NameServerConfig::new(server.ip(), true, connections);
        let config = ResolverConfig::from_parts(None, Vec::new(), vec![name_server]);
        let mut options = ResolverOpts::default();
        options.timeout = Duration::from_secs(3);
        options.attempts = 2;
        options.cache_size = 0;
        options.use_hosts_file = hickory_resolver::config::ResolveHosts::Never;
        let mut builder = Resolver::builder_with_config(config, TokioRuntimeProvider::default());
        *builder.options_mut() = options;
        let resolver = builder
            .build()
            .map_err(|e| format!("cannot set up a resolver for {server}: {e}"))?;
        Ok(Dns { resolver })
    }

    /// The FQDN's addresses; an error says why there are none (the name is not a DNS name, the
    /// server says it does not exist, or it did not answer).
    pub async fn resolve(&self, fqdn: &str) -> Result<BTreeSet<IpAddr>, String> {
        if let Some(why) = dns_name_error(fqdn) {
            return Err(format!("not a DNS name: {why}"));
        }
        // Absolute: no search domain is tried.
        let absolute = format!("{}.", fqdn.trim_end_matches('.'));
        match self.resolver.lookup_ip(absolute.as_str()).await {
            Ok(lookup) => Ok(lookup.iter().collect()),
            Err(e) if e.is_no_records_found() => {
                Err("does not resolve (no A or AAAA record)".into())
            }
            Err(e) => Err(format!("no answer: {e}")),
        }
    }
}
