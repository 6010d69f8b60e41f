//! The Kubernetes-connection argument block, as kubectl spells it: `--kubeconfig`, `--context`,
//! `-n/--namespace`. With the `kube` feature, [`Kube::config`] turns them into a client config.

use clap::Args;
use std::path::PathBuf;

/// `--kubeconfig`, `--context`, `-n/--namespace`, meaning what they mean to kubectl. Without
/// `--kubeconfig`, credentials are found as kubectl finds them: KUBECONFIG (a list of files),
/// ~/.kube/config, or the service account of a pod. Flatten it into a tool's arguments.
#[derive(Debug, Clone, Args, Default)]
pub struct Kube {
    /// The kubeconfig file to use (default: KUBECONFIG, else ~/.kube/config, else in-cluster)
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,

    /// The kubeconfig context to use (default: its current context)
    #[arg(long, value_name = "NAME")]
    pub context: Option<String>,

    /// The namespace of objects that name none (default: the context's)
    #[arg(short = 'n', long, value_name = "NAMESPACE")]
    pub namespace: Option<String>,
}

#[cfg(feature = "kube")]
impl Kube {
    /// The client configuration the flags describe; an unreadable kubeconfig or an unknown
    /// context is a configuration error (exit 78) naming it.
    pub async fn config(&self) -> crate::Result<kube::Config> {
        use kube::config::{KubeConfigOptions, Kubeconfig};
        let options = KubeConfigOptions {
            context: self.context.clone(),
            ..KubeConfigOptions::default()
        };
        let mut config = match (&self.kubeconfig, &self.context) {
            (Some(path), _) => {
                let file = Kubeconfig::read_from(path).map_err(|e| {
                    crate::Error::config(format!("--kubeconfig {}: {e}", path.display()))
                })?;
                kube::Config::from_custom_kubeconfig(file, &options)
                    .await
                    .map_err(|e| {
                        crate::Error::config(format!("--kubeconfig {}: {e}", path.display()))
                    })?
            }
            (None, Some(context)) => kube::Config::from_kubeconfig(&options)
                .await
                .map_err(|e| crate::Error::config(format!("--context {context}: {e}")))?,
            (None, None) => kube::Config::infer()
                .await
                .map_err(|e| crate::Error::config(format!("no cluster credentials: {e}")))?,
        };
        if let Some(namespace) = &self.namespace {
            config.default_namespace = namespace.clone();
        }
        Ok(config)
    }
}
