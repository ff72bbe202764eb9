//! Resolving the app and environment a command names against the configuration, with one
//! refusal for names it does not have.

use greenlight_commands::{AppName, EnvironmentName};

use crate::config::{Config, EnvironmentConfig};

/// An app, or an app's environment, that the configuration does not have.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum UnknownTarget {
    App(AppName),
    Environment {
        app: AppName,
        environment: EnvironmentName,
    },
}

/// The environment's configuration, or which of the two names is unknown.
pub(super) fn configured_environment<'c>(
    config: &'c Config,
    app: &AppName,
    environment: &EnvironmentName,
) -> Result<&'c EnvironmentConfig, UnknownTarget> {
    let Some(app_config) = config.app(app) else {
        return Err(UnknownTarget::App(app.clone()));
    };
    app_config
        .environment(environment)
        .ok_or_else(|| UnknownTarget::Environment {
            app: app.clone(),
            environment: environment.clone(),
        })
}
